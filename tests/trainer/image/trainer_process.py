"""Run ImageLoraTrainer in a fresh process: the resume and SIGTERM tests start this file as a script.

Usage: python trainer_process.py JOB.json, where JOB.json contains the trainer config (wire
format), the records, the run and work folders, and the path of the result JSON to write.
The trainer gets no stop_event, so it handles SIGTERM itself.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch

from lora_operator.api.trainer_config import TrainerConfig
from lora_trainer.data.records import ImageRecord
from lora_trainer.image import ImageLoraTrainer
from lora_trainer.progress import ProgressReporter
from lora_trainer.storage import LocalStore


def main(job_path: str) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    config = TrainerConfig.model_validate(job["config"])
    records = [
        ImageRecord(name=item["name"], source_uri=item["sourceUri"], bucket=tuple(item["bucket"]),
                    image_path=Path(item["imagePath"]), caption=item["caption"])
        for item in job["records"]
    ]
    store = LocalStore(Path(job["runDir"]))
    trainer = ImageLoraTrainer(
        config=config, records=records, store=store, progress=ProgressReporter(store, attempt=2, interval_seconds=0.0),
        work_dir=Path(job["workDir"]), device=torch.device("cpu"),
    )
    result = trainer.run()
    summary = {
        "globalStep": result.global_step,
        "resumedFrom": result.resumed_from,
        "stoppedEarly": result.stopped_early,
        "losses": result.losses,
        "cpuThreads": trainer.cpu_threads,
    }
    Path(job["resultPath"]).write_text(json.dumps(summary), encoding="utf-8")
    return 0


def write_job(path: Path, *, config: TrainerConfig, records: list[ImageRecord], run_dir: Path, work_dir: Path, result_path: Path) -> None:
    """Write the JOB.json that main() reads."""
    job = {
        "config": config.to_wire(),
        "records": [
            {"name": r.name, "sourceUri": r.source_uri, "bucket": list(r.bucket), "imagePath": str(r.image_path), "caption": r.caption}
            for r in records
        ],
        "runDir": str(run_dir),
        "workDir": str(work_dir),
        "resultPath": str(result_path),
    }
    path.write_text(json.dumps(job), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
