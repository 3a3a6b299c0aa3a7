"""The kopf operator: watch handlers, the periodic resync and progress loop, and `lora-operator run`.

Watch events of trainings, their Jobs and their pods all queue the same level-based
reconcile on a deduplicating work queue. A background loop re-reconciles every unfinished training on an interval,
which retries failed reconciles, and mirrors progress.json of running trainings. The
loop replaces per-object kopf timers, which would put a finalizer on every training.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import kopf
from kubernetes import client, config

from lora_operator.api.base import API_GROUP, API_VERSION
from lora_operator.jobs.naming import ANNOTATION_TRAINING_NAME, LABEL_MANAGED_BY, MANAGER
from lora_operator.jobs.render import TrainingRef, run_uri
from lora_operator.kube import Kube, KubeError, NotFound, PLURAL
from lora_operator.leader import Leadership, replica_identity, standby_health, wait_for_leadership
from lora_operator.metrics import Metrics
from lora_operator.notion.controller import register_notion
from lora_operator.reconciler import Reconciler
from lora_operator.settings import OperatorSettings
from lora_operator.status.progress_mirror import changed_progress
from lora_operator.workqueue import WorkQueue
from lora_operator.api.training_spec import LoRATrainingSpec
from lora_trainer.storage import ArtifactStore, S3Store, s3_client_from_env

# Attempts of one reconcile inside a handler before the resync loop takes over.
RECONCILE_TRIES = 3
RECONCILE_BACKOFF_SECONDS = 1.0
# How long shutdown waits for in-flight reconciles, well inside the pod's 30 s default grace period.
WORKER_STOP_SECONDS = 10.0
log = logging.getLogger("lora_operator")


class TrainingLogAdapter(logging.LoggerAdapter):
    """Prefixes every line with the training's namespace/name."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['training']}] {msg}", kwargs


def training_logger(namespace: str, name: str) -> logging.LoggerAdapter:
    """Return a logger that names the training in every line."""
    return TrainingLogAdapter(log, {"training": f"{namespace}/{name}"})


def make_store_opener(settings: OperatorSettings):  # noqa: ANN201 - returns a callable
    """Return a function that opens the run folder at an s3:// URI with the operator's credentials."""
    s3 = s3_client_from_env(endpoint=settings.s3_endpoint, secure=settings.s3_secure, region=settings.s3_region)

    def open_store(uri: str) -> ArtifactStore:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        return S3Store(s3, bucket=bucket, prefix=prefix)

    return open_store


def reconcile_with_retries(reconciler: Reconciler, namespace: str, name: str) -> None:
    """Reconcile, retrying API errors with backoff; the resync loop retries what still fails."""
    logger = training_logger(namespace, name)
    for attempt in range(1, RECONCILE_TRIES + 1):
        try:
            reconciler.reconcile(namespace, name, log=logger)
            return
        except NotFound:
            return  # Deleted meanwhile: nothing left to reconcile.
        except KubeError as error:
            reconciler.metrics.reconcile_errors.inc()
            delay = RECONCILE_BACKOFF_SECONDS * 2 ** (attempt - 1)
            if attempt == RECONCILE_TRIES:
                logger.error("reconcile failed: %s; the resync loop retries it", error)
                return
            logger.warning("reconcile failed: %s; retrying in %.0f s", error, delay)
            time.sleep(delay)


def mirror_progress(reconciler: Reconciler, body: dict[str, Any]) -> None:
    """Patch status.progress of a running training when its progress.json changed."""
    metadata = body["metadata"]
    spec = LoRATrainingSpec.model_validate(body["spec"])
    ref = TrainingRef(namespace=metadata["namespace"], name=metadata["name"], uid=metadata["uid"])
    store = reconciler.open_store(run_uri(ref, spec, reconciler.settings))
    status = body.get("status") or {}
    progress = changed_progress(store, status.get("progress"))
    if progress is not None:
        reconciler.kube.patch_training_status(ref.namespace, ref.name, {"progress": progress})


def resync_loop(reconciler: Reconciler, work: WorkQueue, *, stop: threading.Event) -> None:
    """Mirror progress of running trainings and queue unfinished ones again, every interval."""
    settings = reconciler.settings
    while not stop.wait(settings.progress_interval_seconds):
        try:
            bodies = reconciler.kube.list_trainings(settings.namespaces)
        except KubeError as error:
            log.error("%s; retrying in %.0f s", error, settings.progress_interval_seconds)
            continue
        for body in bodies:
            metadata = body["metadata"]
            phase = (body.get("status") or {}).get("phase", "")
            logger = training_logger(metadata["namespace"], metadata["name"])
            try:
                if phase == "Running":
                    mirror_progress(reconciler, body)
                if phase not in ("Succeeded", "Failed"):
                    work.add(metadata["namespace"], metadata["name"])
            except (KubeError, OSError, ValueError) as error:  # ValueError: pydantic rejected the spec
                reconciler.metrics.reconcile_errors.inc()
                logger.error("resync failed: %s; retrying in %.0f s", error, settings.progress_interval_seconds)


def build_registry(reconciler: Reconciler, work: WorkQueue) -> kopf.OperatorRegistry:
    """Register the watch handlers on a fresh registry."""
    registry = kopf.OperatorRegistry()
    operator_settings = reconciler.settings

    # The handlers are coroutines: they only queue a key, which needs no thread of kopf's executor.
    @kopf.on.event(API_GROUP, API_VERSION, PLURAL, registry=registry)
    async def training_changed(event: dict[str, Any], namespace: str, name: str, **_: Any) -> None:
        if event.get("type") == "DELETED":
            reconciler.metrics.forget(namespace, name)
            return
        body = event.get("object") or {}
        metadata, status = body.get("metadata") or {}, body.get("status") or {}
        # A change of status alone is the reconciler's own write: nothing new to act on.
        own_status_write = (
            event.get("type") == "MODIFIED"
            and not metadata.get("deletionTimestamp")
            and status.get("observedGeneration") == metadata.get("generation")
        )
        if not own_status_write:
            work.add(namespace, name, urgent=not status.get("jobName"))

    @kopf.on.event("batch", "v1", "jobs", labels={LABEL_MANAGED_BY: MANAGER}, registry=registry)
    async def job_changed(namespace: str, annotations: dict[str, str], **_: Any) -> None:
        owner = annotations.get(ANNOTATION_TRAINING_NAME)
        if owner:
            work.add(namespace, owner)

    @kopf.on.event("", "v1", "pods", labels={LABEL_MANAGED_BY: MANAGER}, registry=registry)
    async def pod_changed(namespace: str, annotations: dict[str, str], **_: Any) -> None:
        owner = annotations.get(ANNOTATION_TRAINING_NAME)
        if owner:
            work.add(namespace, owner)

    register_notion(registry, kube=reconciler.kube, settings=reconciler.settings)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as the kubernetes client: in-cluster token, else KUBECONFIG.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # kopf keeps any state of its own in annotations under our prefix, never in status.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kopf.lora-operator.io")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="kopf.lora-operator.io")
        settings.persistence.finalizer = "kopf.lora-operator.io/finalizer"
        settings.posting.enabled = False  # Events are written by the reconciler, one per transition.
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.connect_timeout = 30
        settings.networking.request_timeout = 30
        settings.execution.max_workers = 16
        # kopf waits this long for more events of an object before it handles them. The work
        # queue merges events anyway, so a short window only cuts the latency of a new training.
        settings.batching.batch_window = 0.01
        if operator_settings.namespaces:
            # A namespaced installation may not list namespaces or CRDs cluster-wide.
            settings.scanning.disabled = True

    return registry


def load_kube_client() -> client.ApiClient:
    """Use the in-cluster service account, else KUBECONFIG or ~/.kube/config."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def run_operator(*, settings: OperatorSettings, bind_address: str, metrics_port: int, health_port: int) -> None:
    """Run the operator until interrupted."""
    from prometheus_client import start_http_server

    api_client = load_kube_client()
    metrics = Metrics()
    reconciler = Reconciler(
        kube=Kube(api_client, on_request=metrics.count_request), settings=settings, open_store=make_store_opener(settings), metrics=metrics
    )
    start_http_server(metrics_port, addr=bind_address, registry=metrics.registry)
    leadership = None
    if settings.leader_election:
        leadership = _wait_for_leadership(api_client, settings=settings, bind_address=bind_address, health_port=health_port)
    work = WorkQueue(lambda namespace, name: reconcile_with_retries(reconciler, namespace, name),
                     workers=settings.workers)
    work.start()
    stop = threading.Event()
    threading.Thread(target=resync_loop, args=(reconciler, work), kwargs={"stop": stop}, daemon=True,
                     name="resync").start()
    try:
        kopf.run(
            registry=build_registry(reconciler, work),
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces or None,
            liveness_endpoint=f"http://{bind_address}:{health_port}/healthz",
        )
    finally:
        stop.set()
        work.stop(timeout=WORKER_STOP_SECONDS)
        # Only after the last reconcile: a standby may start work as soon as the Lease is free.
        if leadership is not None:
            leadership.resign()


def _wait_for_leadership(
    api_client: client.ApiClient, *, settings: OperatorSettings, bind_address: str, health_port: int
) -> Leadership:
    if not settings.leader_election_namespace:
        raise SystemExit(
            "LORA_OPERATOR_LEADER_ELECTION is true but LORA_OPERATOR_LEADER_ELECTION_NAMESPACE is empty: "
            "set it to the namespace where the operator may manage its Lease"
        )
    with standby_health(bind_address, health_port):
        return wait_for_leadership(
            api_client, namespace=settings.leader_election_namespace, lease=settings.leader_election_lease,
            identity=replica_identity(),
        )
