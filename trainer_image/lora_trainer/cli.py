"""`lora-train --config FILE`: the trainer container's entrypoint.

Exit codes: 0 finished (or already finished), 42 invalid input (never retried),
143 stopped by SIGTERM after a checkpoint (resumable), 1 any other failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import yaml
from pydantic import ValidationError

from lora_operator.api.trainer_config import TrainerConfig
from lora_trainer import EXIT_INVALID_INPUT
from lora_trainer.errors import InvalidInputError, NonFiniteLossError

EXIT_STOPPED = 143


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lora-train", description="Train one LoRA adapter from a trainer config.")
    parser.add_argument("--config", required=True, type=Path, help="TrainerConfig YAML file.")
    parser.add_argument(
        "--base-dir",
        type=Path,
        default=None,
        help="Folder that relative file:// URIs are resolved against (default: the config file's folder).",
    )
    parser.add_argument("--log-level", default="INFO", help="Python logging level (DEBUG, INFO, WARNING).")
    return parser.parse_args(argv)


def load_config(path: Path) -> TrainerConfig:
    """Read and validate a TrainerConfig file; raise InvalidInputError naming the bad field."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        return TrainerConfig.model_validate(document)
    except (OSError, yaml.YAMLError) as error:
        raise InvalidInputError(f"cannot read trainer config {path}: {error}") from error
    except ValidationError as error:
        fields = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
        raise InvalidInputError(f"invalid trainer config {path}: {fields}") from error


def _install_stop_handler(stop_event: threading.Event, log: logging.Logger) -> None:
    def request_stop(signum: int, _frame: object) -> None:
        log.warning("received %s: finishing the current step, then checkpointing", signal.Signals(signum).name)
        stop_event.set()

    # Ctrl-C in a terminal reaches the whole process group, so SIGINT stops the same clean way.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def main(argv: list[str] | None = None) -> int:
    arguments = _parse_args(argv)
    logging.basicConfig(
        level=arguments.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger("lora_trainer")
    # NOTE: the training loop is not data-parallel yet. Under `accelerate launch` (resources.gpus > 1)
    # only the first process trains, so two processes never write the same run folder.
    rank = int(os.environ.get("RANK", "0"))
    if rank != 0:
        log.warning("process rank %d idles: data-parallel training is not supported yet, rank 0 trains alone", rank)
        return 0
    stop_event = threading.Event()
    _install_stop_handler(stop_event, log)

    # Import late: torch and diffusers take seconds to import, and --help needs neither.
    from lora_trainer.run import run_training

    try:
        config = load_config(arguments.config)
        base_dir = arguments.base_dir or arguments.config.resolve().parent
        log = logging.getLogger(f"lora_trainer.{config.run.namespace}.{config.run.name}")
        outcome = run_training(config, base_dir=base_dir, log=log, stop_event=stop_event)
    except (InvalidInputError, NonFiniteLossError) as error:
        # Neither gets better on a retry: the same input gives the same failure.
        log.error("%s", error)
        return EXIT_INVALID_INPUT
    except Exception:
        log.exception("training failed")
        return 1

    if outcome.status == "already-done":
        log.info("run %s is already complete; nothing to do", outcome.store.uri())
    elif outcome.status == "stopped":
        log.warning("stopped after a checkpoint; run again to resume")
        return EXIT_STOPPED
    else:
        log.info("run finished: %s", outcome.store.uri())
    return 0


if __name__ == "__main__":
    sys.exit(main())
