"""Operator under a burst of LoRATrainings on the real control plane (kwok nodes, SeaweedFS).

Measures, for N trainings created as fast as one client can:
- seconds from the create call to the Job's ADDED watch event (p50, p95);
- reconciler API requests per training lifecycle (create to Succeeded), by verb, progress
  updates excluded (this run writes no progress.json);
- the operator's resident memory before the burst, after it, and after deleting everything.

Run: .venv/bin/python benchmarks/bench_operator_burst.py [--count 200]
Not a test: it prints figures for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubernetes import client, watch  # noqa: E402
from urllib3.exceptions import ProtocolError  # noqa: E402

from tests.cluster.operator.conftest import GROUP, PLURAL, VERSION, OperatorProcess, training_manifest  # noqa: E402
from tests.harness import versions  # noqa: E402
from tests.harness.pod_fates import Fate, fate_annotations  # noqa: E402
from tests.harness.ports import free_ports  # noqa: E402
from tests.harness.stack import Workspace, start_control_plane, start_s3  # noqa: E402
from tests.harness.waiting import poll_until  # noqa: E402

NAMESPACE = "burst"


def rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def request_counts(metrics_text: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in metrics_text.splitlines():
        match = re.match(r'lora_api_requests_total\{resource="([^"]+)",verb="([^"]+)"\} ([0-9.e+]+)', line)
        if match:
            counts[f"{match.group(2)} {match.group(1)}"] = float(match.group(3))
    return counts


def watch_jobs(batch: client.BatchV1Api, seen: dict[str, float], stop: threading.Event) -> None:
    stream = watch.Watch()
    try:
        for event in stream.stream(batch.list_namespaced_job, NAMESPACE, timeout_seconds=600):
            if event["type"] == "ADDED":
                seen.setdefault(event["object"].metadata.name, time.monotonic())
            if stop.is_set():
                stream.stop()
    except ProtocolError:
        pass  # The API server stopped at the end of the run.


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    arguments = parser.parse_args()
    count = arguments.count

    workspace = Workspace()
    control_plane = start_control_plane(bin_dir=versions.components_bin_dir(), workspace=workspace)
    s3 = start_s3(workspace=workspace)
    s3.client().make_bucket("burst")
    control_plane.apply_file(REPO / "crds" / "loratraining.yaml")
    api = control_plane.api_client()
    core, batch, custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    poll_until(lambda: core.list_namespaced_service_account(NAMESPACE).items, timeout=60, description="default SA")

    environment = {
        **os.environ, "KUBECONFIG": str(control_plane.kubeconfig), "LORA_OPERATOR_NAMESPACES": NAMESPACE,
        "LORA_OPERATOR_S3_ENDPOINT": s3.endpoint, "LORA_OPERATOR_S3_SECURE": "false",
        "LORA_OPERATOR_S3_BUCKET": "burst", "LORA_OPERATOR_PROGRESS_INTERVAL_SECONDS": "30",
        "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    operator = OperatorProcess(environment=environment, log_path=workspace.log_dir / "operator.log", ports=free_ports(2))
    operator.start()
    time.sleep(5)
    rss_before = rss_mib(operator.process.pid)

    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=watch_jobs, args=(batch, seen, stop), daemon=True)
    watcher.start()
    time.sleep(1)

    created_at: dict[str, float] = {}
    for index in range(count):
        name = f"burst-{index:03d}"
        manifest = training_manifest(name, resources={"gpus": 0, "cpu": "100m", "memory": "64Mi"})
        created_at[f"{name}-attempt-1"] = time.monotonic()
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, manifest)
    poll_until(lambda: len(seen) >= count, timeout=600, description=f"{count} Jobs", interval=1)
    delays = [seen[job] - created_at[job] for job in created_at]
    rss_after_burst = rss_mib(operator.process.pid)

    # Finish every training, so the request count covers whole lifecycles.
    def running_pods() -> list:
        return [pod for pod in core.list_namespaced_pod(NAMESPACE).items if pod.status.phase == "Running"]

    poll_until(lambda: len(running_pods()) >= count, timeout=600, description="pods running", interval=2)
    for pod in running_pods():
        core.patch_namespaced_pod(pod.metadata.name, NAMESPACE,
                                  {"metadata": {"annotations": fate_annotations(Fate.SUCCEED, after="0s")}})

    def succeeded() -> int:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
        return sum(1 for item in items if (item.get("status") or {}).get("phase") == "Succeeded")

    poll_until(lambda: succeeded() >= count, timeout=900, description="all Succeeded", interval=2)
    counts = request_counts(operator.metrics_text())
    rss_after_lifecycle = rss_mib(operator.process.pid)

    for index in range(count):
        custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, f"burst-{index:03d}")
    time.sleep(20)
    rss_after_delete = rss_mib(operator.process.pid)
    stop.set()
    operator.stop()
    s3.stop()
    control_plane.stop()

    writes = sum(value for key, value in counts.items() if key.split()[0] in ("create", "patch", "delete"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"command: .venv/bin/python benchmarks/bench_operator_burst.py --count {count}")
    print(f"create to Job: p50 {statistics.median(delays):.3f} s, p95 {percentile(delays, 0.95):.3f} s, "
          f"max {max(delays):.3f} s")
    print(f"reconciler writes per lifecycle: {writes / count:.2f}")
    for key, value in sorted(counts.items()):
        print(f"  {key}: {value / count:.2f} per training")
    print(f"operator RSS: {rss_before:.0f} MiB before, {rss_after_burst:.0f} MiB after {count} creations, "
          f"{rss_after_lifecycle:.0f} MiB after all succeeded, {rss_after_delete:.0f} MiB after deleting all")


if __name__ == "__main__":
    main()
