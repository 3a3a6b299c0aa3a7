"""Corpora, configs and trainers for the text trainer tests: builtin://tiny-llama on one CPU thread."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import torch

from lora_operator.api.trainer_config import OutputLocation, RunIdentity, TrainerConfig
from lora_operator.api.training_spec import LoRATrainingSpec
from lora_trainer.checkpoint import CheckpointStore
from lora_trainer.progress import ProgressReporter
from lora_trainer.sources import SourceOptions
from lora_trainer.storage import LocalStore
from lora_trainer.text import TextLoraTrainer, TextTrainResult
from lora_trainer.text.dataset import TextDataset, load_text_dataset
from lora_trainer.text.models import TextModels, load_text_models
from lora_trainer.text.previews import text_preview_prompts
from lora_trainer.text.samples import TokenizedDataset, tokenize_dataset

LOG = logging.getLogger("text-tests")
QUESTIONS = [
    ("Do you fix flat tyres?", "Yes, while you wait. It takes about fifteen minutes."),
    ("When are you open?", "Tuesday to Saturday, nine to six."),
    ("Can I book online?", "Yes, on our website, or just walk in."),
    ("Do you sell helmets?", "Yes, for kids and adults. Try a few on."),
    ("How much is a tune-up?", "45 euros, parts extra. We always ask first."),
    ("Do you rent bikes?", "Four city bikes, 20 euros a day with a lock."),
    ("Can you fit lights?", "Battery and dynamo lights, both."),
    ("Do you take cards?", "Cards, phones and cash."),
]
DEFAULT_TRAINING: dict[str, Any] = {
    "maxSteps": 8, "batchSize": 2, "learningRate": 5e-3, "checkpointEvery": 100, "keepCheckpoints": 20, "seed": 7,
}
DEFAULT_TEXT: dict[str, Any] = {"maxSeqLength": 96, "evalFraction": 0.2, "evalEvery": 3}
DEFAULT_LORA: dict[str, Any] = {"rank": 4, "alpha": 8, "dropout": 0.1}
NO_PREVIEWS: dict[str, Any] = {"count": 0}


def write_corpus(folder: Path) -> Path:
    """Write a chat JSONL file, a prompt/completion CSV and a Markdown file of two sections."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "chat.jsonl").open("w", encoding="utf-8") as handle:
        for question, answer in QUESTIONS:
            messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            handle.write(json.dumps({"messages": messages}) + "\n")
    (folder / "pairs.csv").write_text(
        "prompt,completion\nWhat is a derailleur?,The part that moves the chain between gears.\n"
        "Why oil a chain?,It runs quieter and lasts longer.\n",
        encoding="utf-8",
    )
    (folder / "guide.md").write_text("# Tone\nWarm and brief.\n\n## Prices\nIn euros, with what they include.\n", encoding="utf-8")
    return folder


def make_config(
    run_dir: Path,
    data_dir: Path,
    *,
    training: dict[str, Any] | None = None,
    text: dict[str, Any] | None = None,
    lora: dict[str, Any] | None = None,
    previews: dict[str, Any] | None = None,
) -> TrainerConfig:
    spec = LoRATrainingSpec.model_validate(
        {
            "task": "text",
            "baseModel": "builtin://tiny-llama",
            "dataset": {"sources": [{"uri": data_dir.resolve().as_uri()}]},
            "lora": {**DEFAULT_LORA, **(lora or {})},
            "text": {**DEFAULT_TEXT, **(text or {})},
            "training": {**DEFAULT_TRAINING, **(training or {})},
            "previews": previews if previews is not None else NO_PREVIEWS,
            "resources": {"cpu": "1"},
        }
    )
    return TrainerConfig(
        run=RunIdentity(name="tiny-text", uid="uid-1"), output=OutputLocation(uri=run_dir.resolve().as_uri()), spec=spec, device="cpu"
    )


def load_dataset(config: TrainerConfig, work_dir: Path) -> TextDataset:
    spec = config.spec
    return load_text_dataset(
        spec.dataset, spec.text, work_dir=work_dir, options=SourceOptions(base_dir=work_dir), seed=spec.training.seed, log=LOG
    )


def prepare(config: TrainerConfig, work_dir: Path) -> tuple[TextDataset, TextModels, TokenizedDataset]:
    """Read the dataset, load the models and tokenise, as the text pipeline does."""
    dataset = load_dataset(config, work_dir)
    models = load_text_models(config=config, device=torch.device("cpu"), log=LOG)
    tokenized = tokenize_dataset(dataset, tokenizer=models.tokenizer, template=models.chat_template, text=config.spec.text, log=LOG)
    return dataset, models, tokenized


class StopAtStep(ProgressReporter):
    """A progress reporter that sets ``stop_event`` once training reports step ``stop_at``."""

    def __init__(self, store: LocalStore, *, stop_at: int, stop_event: threading.Event) -> None:
        super().__init__(store, attempt=1, interval_seconds=0.0)
        self.stop_at = stop_at
        self.stop_event = stop_event

    def update(self, *, force: bool = False, **fields: Any) -> None:
        super().update(force=force, **fields)
        if fields.get("phase") == "training" and fields.get("step") == self.stop_at:
            self.stop_event.set()


def train(config: TrainerConfig, *, run_dir: Path, work_dir: Path, stop_at: int | None = None) -> TextTrainResult:
    """Prepare and train in this process; with ``stop_at`` the run stops after that step's checkpoint."""
    dataset, models, tokenized = prepare(config, work_dir)
    store = LocalStore(run_dir)
    stop_event = threading.Event()
    if stop_at is None:
        progress = ProgressReporter(store, attempt=1, interval_seconds=0.0)
    else:
        progress = StopAtStep(store, stop_at=stop_at, stop_event=stop_event)
    trainer = TextLoraTrainer(
        config=config, models=models, data=tokenized,
        prompts=text_preview_prompts(config.spec.previews, records=dataset.eval + dataset.train),
        chat_previews=True, store=store, progress=progress, device=torch.device("cpu"), log=LOG, stop_event=stop_event,
    )
    return trainer.run()


def final_adapter(run_dir: Path) -> dict[str, torch.Tensor]:
    """Return the trainable tensors of the newest complete checkpoint of ``run_dir``."""
    checkpoint = CheckpointStore(LocalStore(run_dir), keep=100).load_latest()
    assert checkpoint is not None, f"no complete checkpoint in {run_dir}"
    return checkpoint.adapter


def differing_tensors(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor]) -> list[str]:
    """Return the names whose tensors are not bit-identical (torch.equal), missing ones included."""
    names = sorted(set(expected) | set(actual))
    return [name for name in names if name not in expected or name not in actual or not torch.equal(expected[name], actual[name])]
