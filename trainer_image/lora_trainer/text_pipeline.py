"""The stages of a text run, in order: read and check, tokenise, manifest, train, export, summarise."""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

from lora_operator.api.trainer_config import TrainerConfig
from lora_trainer.distributed import SINGLE_PROCESS, Processes
from lora_trainer.lossplot import write_loss_plot
from lora_trainer.progress import ProgressReporter
from lora_trainer.sources import SourceOptions
from lora_trainer.storage import ArtifactStore
from lora_trainer.text import TextLoraTrainer, TextTrainResult
from lora_trainer.text.dataset import TextDataset, load_text_dataset
from lora_trainer.text.export import ADAPTER_WEIGHTS, export_text_adapter
from lora_trainer.text.manifest import MANIFEST_KEY, write_text_manifest
from lora_trainer.text.model_card import ModelCardFacts
from lora_trainer.text.models import load_text_models
from lora_trainer.text.previews import text_preview_prompts
from lora_trainer.text.samples import require_training_samples, tokenize_dataset
from lora_trainer.versions import software_versions


def run_text_task(
    config: TrainerConfig,
    *,
    store: ArtifactStore,
    progress: ProgressReporter,
    work_dir: Path,
    base_dir: Path,
    device: torch.device,
    log: logging.Logger,
    stop_event: threading.Event | None,
    processes: Processes = SINGLE_PROCESS,
) -> dict[str, Any] | None:
    """Run every stage; return the run summary, or None when stopped early after a checkpoint.

    Invalid records fail the run with InvalidInputError listing them by file and line, after
    dataset/manifest.jsonl records every one. Only the main process reads the sources and
    writes to the store. The others train their share and return an empty summary.
    """
    spec = config.spec
    dataset = processes.share(
        lambda: _read_dataset(config, store=store, progress=progress, work_dir=work_dir, base_dir=base_dir, log=log)
    )

    progress.update(message="loading the base model and tokenising", force=True)
    # The main process fills the model cache first, so the others read it instead of downloading too.
    with processes.main_first():
        models = load_text_models(config=config, device=device, log=log)
    tokenized = tokenize_dataset(dataset, tokenizer=models.tokenizer, template=models.chat_template, text=spec.text, log=log)
    manifest = {}
    if processes.is_main:
        manifest = write_text_manifest(
            store, dataset, tokenized, text=spec.text, chat_template_origin=models.chat_template_origin
        )
    require_training_samples(tokenized)

    progress.update(phase="training", message="training", force=True)
    trainer = TextLoraTrainer(
        config=config, models=models, data=tokenized,
        prompts=text_preview_prompts(spec.previews, records=dataset.eval + dataset.train),
        chat_previews=any(record.kind == "chat" for record in dataset.train),
        store=store, progress=progress, device=device, log=log, stop_event=stop_event, processes=processes,
    )
    result = trainer.run()
    if not processes.is_main:
        return None if result.stopped_early else {}
    write_loss_plot(result.losses, store)
    if result.stopped_early:
        return None

    progress.update(phase="exporting", message="exporting the adapter", force=True)
    weights, adapter_tensors = _export(config, dataset=dataset, result=result, store=store, work_dir=work_dir, log=log)
    last_eval = result.evals[-1] if result.evals else {}
    return {
        "schemaVersion": 1,
        "run": config.run.to_wire(),
        "task": "text",
        "baseModel": spec.base_model,
        "metrics": {
            "globalStep": result.global_step,
            "epoch": result.epoch,
            "finalLoss": result.losses[-1][1] if result.losses else None,
            "evalLoss": last_eval.get("loss"),
            "perplexity": last_eval.get("perplexity"),
            "evalHistory": result.evals,
            "samplesPerSecond": result.samples_per_second,
            "tokensPerSecond": result.tokens_per_second,
            "trainSeconds": result.seconds,
            "adapterTensors": adapter_tensors,
        },
        "dataset": {
            "hash": dataset.fingerprint(),
            "files": len(dataset.files),
            "trainRecords": len(dataset.train),
            "evalRecords": len(dataset.eval),
            "duplicates": manifest["duplicates"],
            "outcomes": manifest.get("outcomes", {}),
            "tokens": manifest.get("tokens", {}),
        },
        "artifacts": {
            "weights": weights,
            "previews": result.preview_keys,
            "lossPlot": "loss.png",
            "config": "config.yaml",
            "manifest": MANIFEST_KEY,
        },
        "resumedFromStep": result.resumed_from,
        "versions": software_versions(),
    }


def _read_dataset(
    config: TrainerConfig, *, store: ArtifactStore, progress: ProgressReporter, work_dir: Path, base_dir: Path,
    log: logging.Logger,
) -> TextDataset:
    """Read and check every text source; on invalid records write the manifest, then raise InvalidInputError."""
    spec = config.spec
    progress.update(phase="preparing", message="reading and checking the text files", force=True)
    options = SourceOptions(
        base_dir=base_dir, max_file_bytes=spec.dataset.max_file_bytes,
        s3_endpoint=config.output.s3_endpoint, s3_secure=config.output.s3_secure, s3_region=config.output.s3_region,
    )
    dataset = load_text_dataset(
        spec.dataset, spec.text, work_dir=work_dir / "text-sources", options=options, seed=spec.training.seed, log=log
    )
    if dataset.errors:
        write_text_manifest(store, dataset, None, text=spec.text, chat_template_origin="not resolved")
        dataset.raise_for_errors()
    return dataset


def _export(
    config: TrainerConfig, *, dataset: TextDataset, result: TextTrainResult, store: ArtifactStore, work_dir: Path, log: logging.Logger
) -> tuple[dict[str, dict[str, str]], int]:
    """Export the adapter (and merged weights), upload every file under weights/, return key and sha256 per format."""
    spec = config.spec
    last_eval = result.evals[-1] if result.evals else {}
    facts = ModelCardFacts(
        name=spec.output.name or config.run.name, base_model=spec.base_model,
        base_model_revision=spec.base_model_revision, steps=result.global_step, epochs=result.epoch,
        lora={"rank": spec.lora.rank, "alpha": spec.lora.alpha, "dropout": spec.lora.dropout,
              "targetModules": spec.lora.target_modules, "useRslora": spec.lora.use_rslora, "useDora": spec.lora.use_dora},
        dataset_hash=dataset.fingerprint(), train_records=len(dataset.train), eval_records=len(dataset.eval),
        final_loss=result.losses[-1][1] if result.losses else None, eval_loss=last_eval.get("loss"),
        perplexity=last_eval.get("perplexity"), chat_template=result.models.chat_template_origin,
    )
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="export-") as folder:
        out_dir = Path(folder)
        exported = export_text_adapter(result.models, out_dir=out_dir, facts=facts, merge=spec.text.merge_weights, log=log)
        for path in sorted(out_dir.rglob("*")):
            if path.is_file():
                store.put_file("weights/" + path.relative_to(out_dir).as_posix(), path)
        weights = {"peft": _entry(out_dir, out_dir / ADAPTER_WEIGHTS)}
        if exported.merged_dir is not None:
            merged_files = sorted(exported.merged_dir.glob("model*.safetensors*"))
            index = exported.merged_dir / "model.safetensors.index.json"
            weights["merged"] = _entry(out_dir, index if index.is_file() else merged_files[0])
    return weights, exported.adapter_tensors


def _entry(out_dir: Path, path: Path) -> dict[str, str]:
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"key": "weights/" + path.relative_to(out_dir).as_posix(), "sha256": digest}
