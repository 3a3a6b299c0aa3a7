"""Notion integration on the real control plane (kwok nodes, SeaweedFS) and the local Notion server.

Measures, for N rows of the Chinese example database with one reference image each:
- seconds from a row's creation to its LoRATraining's ADDED watch event (p50, p95, max),
  at the default pace of 2.5 requests per second and a 5 s poll interval;
- Notion requests per synced row (query, claim, user look-up), by operation;
- Notion requests per progress update: when progress.json changed, and when it did not;
- Notion requests per row for the run's end (final status, files, comment), by operation.

Run: .venv/bin/python benchmarks/bench_notion.py [--rows 20]
Not a test: it prints figures for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubernetes import client, watch  # noqa: E402
from urllib3.exceptions import ProtocolError  # noqa: E402

from tests.cluster.operator.conftest import GROUP, PLURAL, VERSION, OperatorProcess  # noqa: E402
from tests.datasets import PHOTOS_DIR  # noqa: E402
from tests.harness import versions  # noqa: E402
from tests.harness.pod_fates import Fate, fate_annotations  # noqa: E402
from tests.harness.ports import free_ports  # noqa: E402
from tests.harness.stack import Workspace, start_control_plane, start_s3  # noqa: E402
from tests.harness.waiting import poll_until  # noqa: E402
from tests.notion_server import NotionServer  # noqa: E402
from tests.notion_server.lora_database import create_lora_database, example_source  # noqa: E402

NAMESPACE = "notion-bench"
BUCKET = "notion-bench"
PAGE_LABEL = "lora-operator.io/notion-page"
OPERATIONS = {("POST", "/query"): "data_sources.query", ("GET", "/v1/data_sources"): "data_sources.retrieve",
              ("PATCH", "/v1/pages"): "pages.update", ("GET", "/v1/pages"): "pages.retrieve",
              ("GET", "/v1/users"): "users.retrieve", ("POST", "/v1/comments"): "comments.create",
              ("POST", "/send"): "file_uploads.send", ("POST", "/v1/file_uploads"): "file_uploads.create"}


def operation(record) -> str:
    for (method, fragment), name in OPERATIONS.items():
        if record.method == method and fragment in record.path:
            return name
    return f"{record.method} {record.path}"


def per_row(records, rows: int) -> dict[str, float]:
    return {name: count / rows for name, count in sorted(Counter(operation(record) for record in records).items())}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def put_json(s3, key: str, document: dict) -> None:
    data = json.dumps(document).encode()
    s3.client().put_object(BUCKET, key, io.BytesIO(data), len(data))


def watch_trainings(custom: client.CustomObjectsApi, seen: dict[str, float], stop: threading.Event) -> None:
    stream = watch.Watch()
    try:
        for event in stream.stream(custom.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE, PLURAL,
                                   label_selector=PAGE_LABEL, timeout_seconds=1800):
            if event["type"] == "ADDED":
                seen.setdefault(event["object"]["metadata"]["labels"][PAGE_LABEL], time.monotonic())
            if stop.is_set():
                stream.stop()
    except ProtocolError:
        return  # The API server stopped at the end of the run.


def single_row_delays(database, seen: dict[str, float], *, count: int) -> list[float]:
    """Add rows one at a time, each after the previous one's LoRATraining exists; return each delay."""
    delays = []
    for index in range(count):
        page = database.add_row(f"单行 {index}", images=[PHOTOS_DIR / "coffee.png"]).replace("-", "")
        added = time.monotonic()
        poll_until(lambda: page in seen, timeout=120, description=f"the LoRATraining of single row {index}")
        delays.append(seen[page] - added)
        time.sleep(2.0 + index * 0.7)  # Spread the next row over the poll cycle.
    return delays


def measure(rows: int, *, database, server, s3, core, custom) -> tuple:
    """Run the three phases and return (single delays, burst delays, sync requests, updates, end requests)."""
    source = example_source(database)
    source["metadata"]["namespace"] = NAMESPACE
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "notionsources", source)
    poll_until(lambda: server.requests(method="POST"), timeout=60, description="the first sync pass")

    seen: dict[str, float] = {}
    stop = threading.Event()
    threading.Thread(target=watch_trainings, args=(custom, seen, stop), daemon=True).start()
    time.sleep(1)

    # Phase 0: single rows, one at a time.
    single = single_row_delays(database, seen, count=5)
    seen.clear()

    # Phase 1: a burst of rows appears while the source polls; each becomes one LoRATraining.
    start = len(server.requests())
    added: dict[str, float] = {}  # page id without dashes, as in the label -> time added
    pages = []
    for index in range(rows):
        page = database.add_row(f"风格 {index:02d}", images=[PHOTOS_DIR / "coffee.png"])
        added[page.replace("-", "")] = time.monotonic()
        pages.append(page)
    poll_until(lambda: len(seen) >= rows, timeout=900, description=f"{rows} LoRATrainings", interval=0.5)
    poll_until(lambda: all(database.value(page, "状态") == "训练中" for page in pages), timeout=900,
               description="every row shows 训练中", interval=1)
    time.sleep(3)
    synced = server.requests()[start:]
    delays = [seen[page] - added[page] for page in added]

    # Phase 2: progress of one training, changed four times, then rewritten unchanged four times.
    trainings = {item["metadata"]["labels"][PAGE_LABEL]: item
                 for item in custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
                 if item["metadata"]["labels"][PAGE_LABEL] in added}
    first = trainings[pages[0].replace("-", "")]
    prefix = f"{NAMESPACE}/{first['metadata']['name']}/{first['metadata']['uid']}"
    before = len(server.requests(method="PATCH"))
    for step in (1, 2, 3, 4):
        put_json(s3, f"{prefix}/progress.json", {"step": step, "totalSteps": 8, "epoch": 1, "lossEma": 0.5 / step})
        poll_until(lambda: database.value(pages[0], "进度") == step * 12.5, timeout=60, description=f"progress step {step}")
    changed_updates = len(server.requests(method="PATCH")) - before
    before = len(server.requests(method="PATCH"))
    for second in range(4):
        put_json(s3, f"{prefix}/progress.json", {"step": 4, "totalSteps": 8, "epoch": 1, "lossEma": 0.125,
                                                 "updatedAt": f"2025-01-01T00:00:0{second}Z"})
        time.sleep(2.5)
    unchanged_updates = len(server.requests(method="PATCH")) - before

    # Phase 3: every run succeeds with one preview and small weights; rows get files and a comment.
    start = len(server.requests())
    for item in trainings.values():  # The burst's rows only; the single rows keep running.
        name, uid = item["metadata"]["name"], item["metadata"]["uid"]
        run = f"{NAMESPACE}/{name}/{uid}"
        weights = b"w" * 4096
        s3.client().put_object(BUCKET, f"{run}/weights/{name}.safetensors", io.BytesIO(weights), len(weights))
        preview = (PHOTOS_DIR / "coffee.png").read_bytes()
        s3.client().put_object(BUCKET, f"{run}/previews/step-000008-00.png", io.BytesIO(preview), len(preview))
        put_json(s3, f"{run}/run.json", {"artifacts": {"weights": {"kohya": {"key": f"weights/{name}.safetensors"}},
                                                       "previews": ["previews/step-000008-00.png"]}})
    burst_names = {item["metadata"]["name"] for item in trainings.values()}
    for pod in core.list_namespaced_pod(NAMESPACE).items:
        if (pod.metadata.annotations or {}).get("lora-operator.io/training-name") not in burst_names:
            continue
        core.patch_namespaced_pod(pod.metadata.name, NAMESPACE,
                                  {"metadata": {"annotations": fate_annotations(Fate.SUCCEED, after="0s")}})
    poll_until(lambda: all(database.value(page, "状态") == "已完成" and database.comments(page) for page in pages),
               timeout=900, description="every row finished", interval=1)
    time.sleep(3)
    ended = server.requests()[start:]
    stop.set()
    return single, delays, synced, changed_updates, unchanged_updates, ended


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20)
    rows = parser.parse_args().rows

    workspace = Workspace()
    control_plane = start_control_plane(bin_dir=versions.components_bin_dir(), workspace=workspace)
    s3 = start_s3(workspace=workspace)
    s3.client().make_bucket(BUCKET)
    for crd in ("loratraining.yaml", "notionsource.yaml"):
        control_plane.apply_file(REPO / "crds" / crd)
    server = NotionServer().start()
    database = create_lora_database(server)
    api = control_plane.api_client()
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    poll_until(lambda: core.list_namespaced_service_account(NAMESPACE).items, timeout=60, description="default SA")
    core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": "notion-token"},
                                              "data": {"token": base64.b64encode(database.token.encode()).decode()}})

    environment = {
        **os.environ, "KUBECONFIG": str(control_plane.kubeconfig), "LORA_OPERATOR_NAMESPACES": NAMESPACE,
        "LORA_OPERATOR_S3_ENDPOINT": s3.endpoint, "LORA_OPERATOR_S3_SECURE": "false", "LORA_OPERATOR_S3_BUCKET": BUCKET,
        "LORA_OPERATOR_PROGRESS_INTERVAL_SECONDS": "1", "LORA_OPERATOR_NOTION_API_URL": server.base_url,
        "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    operator = OperatorProcess(environment=environment, log_path=workspace.log_dir / "operator.log", ports=free_ports(2))
    operator.start()
    try:
        figures = measure(rows, database=database, server=server, s3=s3, core=core, custom=custom)
    finally:
        operator.stop()
        server.stop()
        s3.stop()
        control_plane.stop()
    single, delays, synced, changed_updates, unchanged_updates, ended = figures

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"command: .venv/bin/python benchmarks/bench_notion.py --rows {rows}")
    print(f"single row to LoRATraining: mean {statistics.mean(single):.2f} s, max {max(single):.2f} s "
          f"over {len(single)} rows (poll interval 5 s)")
    print(f"burst of {rows} rows to LoRATrainings: p50 {statistics.median(delays):.2f} s, p95 {percentile(delays, 0.95):.2f} s, "
          f"max {max(delays):.2f} s (poll interval 5 s, 2.5 requests/s)")
    print(f"Notion requests per synced row (until every row shows 训练中): {len(synced) / rows:.2f}")
    for name, value in per_row(synced, rows).items():
        print(f"  {name}: {value:.2f}")
    print(f"Notion requests per progress update: {changed_updates / 4:.2f} when changed, "
          f"{unchanged_updates / 4:.2f} when unchanged")
    print(f"Notion requests per row at the run's end: {len(ended) / rows:.2f}")
    for name, value in per_row(ended, rows).items():
        print(f"  {name}: {value:.2f}")


if __name__ == "__main__":
    main()
