"""pytest fixtures for the real control plane and S3; tests/conftest.py registers this module as a plugin.

Session-scoped: `cluster` (tests.harness.stack.ControlPlane) and `s3`
(tests.harness.seaweed.SeaweedS3). Each starts on first use, so a run that
only needs S3 never touches the Kubernetes binaries.
Function-scoped: `namespace` (a fresh namespace name) and `s3_bucket` (a
fresh bucket name).

A test that requests `cluster` or `namespace` gets the `cluster` marker, and
one that requests `s3` or `s3_bucket` gets the `s3` marker, if it lacks them,
so that `-m` selections always see what a test starts.
"""

from __future__ import annotations

import logging
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client
from minio.deleteobjects import DeleteObject

from tests.harness import versions
from tests.harness.seaweed import SeaweedS3
from tests.harness.stack import ControlPlane, Workspace, start_control_plane, start_s3

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-components"
SERVICE_ACCOUNT_TIMEOUT_SECONDS = 60.0

CLUSTER_FIXTURES = {"cluster", "namespace"}
S3_FIXTURES = {"s3", "s3_bucket"}

_workspace_key = pytest.StashKey[Workspace]()
_control_plane_key = pytest.StashKey[ControlPlane]()
_s3_key = pytest.StashKey[SeaweedS3]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixture_names = set(getattr(item, "fixturenames", ()))
        if fixture_names & CLUSTER_FIXTURES and item.get_closest_marker("cluster") is None:
            item.add_marker(pytest.mark.cluster)
        if fixture_names & S3_FIXTURES and item.get_closest_marker("s3") is None:
            item.add_marker(pytest.mark.s3)


@pytest.fixture(scope="session")
def stack_workspace(request: pytest.FixtureRequest) -> Iterator[Workspace]:
    """The session's temporary folder; its logs/ subfolder outlives the run."""
    workspace = Workspace()
    request.config.stash[_workspace_key] = workspace
    yield workspace
    workspace.remove_run_data()


def ensure_components_built(config: pytest.Config) -> Path:
    """Return the folder of the pinned binaries, running scripts/build-components first if any is missing."""
    bin_dir = versions.components_bin_dir()
    missing = versions.missing_binaries(bin_dir)
    if not missing:
        return bin_dir

    logger.warning("component binaries %s missing in %s; running %s", missing, bin_dir, BUILD_SCRIPT)
    capture = config.pluginmanager.getplugin("capturemanager")
    # Show the build's progress live: a cold build takes many minutes.
    with capture.global_and_fixture_disabled():
        print(f"\nBuilding the test-stack binaries with {BUILD_SCRIPT} (missing: {', '.join(missing)}) ...")
        result = subprocess.run([str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        pytest.fail(f"{BUILD_SCRIPT} failed with exit code {result.returncode}; see its output above", pytrace=False)
    still_missing = versions.missing_binaries(bin_dir)
    if still_missing:
        pytest.fail(f"{BUILD_SCRIPT} succeeded but {still_missing} are still missing in {bin_dir}", pytrace=False)
    return bin_dir


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, stack_workspace: Workspace) -> Iterator[ControlPlane]:
    """The running control plane: etcd, kube-apiserver, controller manager, scheduler, kwok GPU nodes."""
    bin_dir = ensure_components_built(request.config)
    control_plane = start_control_plane(bin_dir=bin_dir, workspace=stack_workspace)
    request.config.stash[_control_plane_key] = control_plane
    yield control_plane
    control_plane.stop()


@pytest.fixture(scope="session")
def s3(request: pytest.FixtureRequest, stack_workspace: Workspace) -> Iterator[SeaweedS3]:
    """The running SeaweedFS S3 server: endpoint, access_key, secret_key, secure and client()."""
    server = start_s3(workspace=stack_workspace)
    request.config.stash[_s3_key] = server
    yield server
    server.stop()


def unique_name(test_name: str, *, max_length: int) -> str:
    """Return a DNS-label-style name (lowercase, digits, '-') from test_name plus a random suffix.

    The result is valid as a Kubernetes namespace and as an S3 bucket name.
    """
    suffix = secrets.token_hex(3)
    stem = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")
    stem = stem.removeprefix("test-")
    stem = stem[: max_length - len(suffix) - 3].strip("-")
    return f"t-{stem}-{suffix}" if stem else f"t-{suffix}"


def _wait_for_default_service_account(core: client.CoreV1Api, namespace: str) -> None:
    # The ServiceAccount admission plugin rejects pods until the controller
    # manager has created the namespace's `default` ServiceAccount.
    deadline = time.monotonic() + SERVICE_ACCOUNT_TIMEOUT_SECONDS
    while True:
        accounts = core.list_namespaced_service_account(namespace, field_selector="metadata.name=default")
        if accounts.items:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"ServiceAccount default not created in namespace {namespace} after "
                f"{SERVICE_ACCOUNT_TIMEOUT_SECONDS:.0f} s; see the kube-controller-manager log"
            )
        time.sleep(0.2)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, cluster: ControlPlane) -> Iterator[str]:
    """A new namespace named after the test, deleted (without waiting) afterwards."""
    name = unique_name(request.node.name, max_length=63)
    with cluster.api_client() as api_client:
        core = client.CoreV1Api(api_client)
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"lora-operator.io/test": "true"}))
        core.create_namespace(body)
        _wait_for_default_service_account(core, name)
        yield name
        core.delete_namespace(name, propagation_policy="Background")
        _release_pods(core, name)


def _release_pods(core: client.CoreV1Api, namespace: str) -> None:
    """Remove the pods of a terminating namespace at once, so that later tests get their GPUs.

    A deleted Job pod stays, Running and booking its GPUs, until the Job controller drops its
    job-tracking finalizer, and the fake nodes have 16 GPUs in all. A terminating namespace
    accepts no new pods, so no Job replaces the removed ones.
    """
    for pod in core.list_namespaced_pod(namespace).items:
        if pod.metadata.finalizers:
            _ignore_not_found(core.patch_namespaced_pod, pod.metadata.name, namespace, {"metadata": {"finalizers": None}})
    _ignore_not_found(core.delete_collection_namespaced_pod, namespace, grace_period_seconds=0)


def _ignore_not_found(call: Callable[..., object], *args: object, **kwargs: object) -> None:
    try:
        call(*args, **kwargs)
    except client.ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture
def s3_bucket(request: pytest.FixtureRequest, s3: SeaweedS3) -> Iterator[str]:
    """A new empty bucket named after the test, removed with its objects afterwards."""
    name = unique_name(request.node.name, max_length=63)
    s3_client = s3.client()
    s3_client.make_bucket(name)
    yield name
    objects = s3_client.list_objects(name, recursive=True, include_version=False)
    errors = list(s3_client.remove_objects(name, (DeleteObject(item.object_name) for item in objects)))
    if errors:
        raise RuntimeError(f"removing the objects of bucket {name} failed: {errors}")
    s3_client.remove_bucket(name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed:
        for title, text in _stack_failure_sections(item.config):
            report.sections.append((title, text))
    return report


def _stack_failure_sections(config: pytest.Config) -> list[tuple[str, str]]:
    """Return report sections naming the log folder and the tail of each component that has exited."""
    workspace = config.stash.get(_workspace_key, None)
    if workspace is None:
        return []
    sections = [("test stack", f"component logs: {workspace.log_dir}")]
    processes = []
    control_plane = config.stash.get(_control_plane_key, None)
    if control_plane is not None:
        processes += control_plane.processes
    server = config.stash.get(_s3_key, None)
    if server is not None:
        processes.append(server.process)
    for process in processes:
        if not process.is_running():
            sections.append((f"{process.name} exited", process.describe_failure("exited during the test")))
    return sections


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    workspace = config.stash.get(_workspace_key, None)
    if workspace is not None:
        terminalreporter.write_line(f"lora-operator test stack logs: {workspace.log_dir}")
