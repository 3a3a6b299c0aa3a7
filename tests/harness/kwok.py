"""kwok and the fake GPU nodes it keeps Ready; the stages it plays are in kwok_stages.yaml."""

from __future__ import annotations

import time
from pathlib import Path

from kubernetes import client

from tests.harness.ports import LOOPBACK
from tests.harness.process import ComponentError, ComponentProcess, component_environment, start_process

STAGES_FILE = Path(__file__).with_name("kwok_stages.yaml")
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
FAKE_NODE_ANNOTATION_VALUE = "fake"
NODE_READY_TIMEOUT_SECONDS = 120.0

# A kubelet of a real node would renew its Lease; kwok does it for the fake
# nodes, so the node lifecycle controller keeps them Ready.
NODE_LEASE_DURATION_SECONDS = 40

# Pod IPs only appear in pod status: no traffic goes to them.
POD_CIDR = "10.244.0.0/16"

GPU_RESOURCE = "nvidia.com/gpu"
FAKE_NODE_NAMES = ("kwok-gpu-node-0", "kwok-gpu-node-1")
FAKE_NODE_RESOURCES = {
    "cpu": "64",
    "memory": "512Gi",
    "ephemeral-storage": "2Ti",
    "pods": "110",
    GPU_RESOURCE: "8",
}
NOT_READY_TAINT = "node.kubernetes.io/not-ready"


def start_kwok(*, bin_dir: Path, kubeconfig: Path, work_dir: Path, log_dir: Path) -> ComponentProcess:
    """Start kwok managing the nodes annotated kwok.x-k8s.io/node=fake, with the stages of STAGES_FILE."""
    work_dir.mkdir(parents=True, exist_ok=True)
    env = component_environment()
    # kwok also loads $KWOK_WORKDIR/kwok.yaml (default ~/.kwok) when it
    # exists; a private folder keeps a developer's file out of the tests.
    env["KWOK_WORKDIR"] = str(work_dir)
    command = [
        bin_dir / "kwok",
        f"--kubeconfig={kubeconfig}",
        f"--config={STAGES_FILE}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}={FAKE_NODE_ANNOTATION_VALUE}",
        f"--node-ip={LOOPBACK}",
        f"--cidr={POD_CIDR}",
        f"--node-lease-duration-seconds={NODE_LEASE_DURATION_SECONDS}",
    ]
    return start_process(name="kwok", command=command, log_dir=log_dir, env=env)


def fake_gpu_node(name: str) -> client.V1Node:
    """Return a Node that kwok manages, offering FAKE_NODE_RESOURCES (8 GPUs among them)."""
    return client.V1Node(
        metadata=client.V1ObjectMeta(
            name=name,
            annotations={FAKE_NODE_ANNOTATION: FAKE_NODE_ANNOTATION_VALUE},
            labels={
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                "nvidia.com/gpu.present": "true",
            },
        ),
        status=client.V1NodeStatus(capacity=FAKE_NODE_RESOURCES, allocatable=FAKE_NODE_RESOURCES),
    )


def create_fake_nodes(core: client.CoreV1Api) -> None:
    # kube-apiserver keeps the status sent with a Node create, as a kubelet
    # registering its node relies on, so capacity needs no second write.
    for name in FAKE_NODE_NAMES:
        core.create_node(fake_gpu_node(name))


def _is_schedulable(node: client.V1Node) -> bool:
    conditions = {condition.type: condition.status for condition in node.status.conditions or []}
    taints = {taint.key for taint in node.spec.taints or []}
    return conditions.get("Ready") == "True" and NOT_READY_TAINT not in taints


def wait_for_fake_nodes(core: client.CoreV1Api, *, kwok: ComponentProcess, controller_manager: ComponentProcess) -> None:
    """Wait until every fake node is Ready and the node lifecycle controller removed its not-ready taint."""
    deadline = time.monotonic() + NODE_READY_TIMEOUT_SECONDS
    pending = list(FAKE_NODE_NAMES)
    while pending:
        kwok.raise_if_exited()
        controller_manager.raise_if_exited()
        pending = [name for name in pending if not _is_schedulable(core.read_node(name))]
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise ComponentError(
                kwok.describe_failure(
                    f"fake nodes {pending} not Ready and untainted after {NODE_READY_TIMEOUT_SECONDS:.0f} s "
                    f"(kwok sets Ready; kube-controller-manager, log {controller_manager.log_file}, "
                    f"removes the {NOT_READY_TAINT} taint)"
                )
            )
        time.sleep(0.5)
