"""`lora-train --config FILE`: the trainer container's entrypoint.

Exit codes: 0 finished (or already finished), 42 invalid input (never retried),
137 out of GPU memory (retried with half the batch), 143 stopped by SIGTERM after a
checkpoint (resumable), 1 any other failure. With `--processes N` (N > 1) it starts one
worker process per GPU and exits with the code that combines theirs.
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
from lora_trainer import EXIT_INVALID_INPUT, EXIT_OUT_OF_MEMORY, EXIT_STOPPED, OUT_OF_MEMORY_MARK
from lora_trainer.errors import InvalidInputError, NonFiniteLossError


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
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="Training processes, one per GPU (default 1). With more than 1 the steps are data-parallel.",
    )
    arguments = parser.parse_args(argv)
    if arguments.processes < 1:
        parser.error(f"--processes must be at least 1, got {arguments.processes}")
    return arguments


def _worker_arguments(arguments: argparse.Namespace) -> list[str]:
    worker = ["--config", str(arguments.config), "--log-level", arguments.log_level]
    if arguments.base_dir is not None:
        worker += ["--base-dir", str(arguments.base_dir)]
    return worker


def _is_main_process() -> bool:
    """Return whether this is the only training process or rank 0 of several."""
    return os.environ.get("RANK") in (None, "0")


def _configure_logging(level_name: str) -> None:
    level = logging.getLevelName(level_name.upper())
    rank = os.environ.get("RANK")
    prefix = f"[rank {rank}] " if rank is not None else ""
    # The workers other than rank 0 repeat rank 0's step lines and progress bars, so they log
    # warnings and errors only, and tqdm (used by diffusers, transformers and huggingface_hub) stays quiet.
    if not _is_main_process():
        os.environ["TQDM_DISABLE"] = "1"
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        if isinstance(level, int):
            level = max(level, logging.WARNING)
    logging.basicConfig(
        level=level, format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s", stream=sys.stderr
    )


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
    # Rank 0 alone writes the checkpoint, so the other training processes only note the signal.
    level = logging.WARNING if _is_main_process() else logging.INFO

    def request_stop(signum: int, _frame: object) -> None:
        log.log(level, "received %s: finishing the current step, then checkpointing", signal.Signals(signum).name)
        stop_event.set()

    # Ctrl-C in a terminal reaches the whole process group, so SIGINT stops the same clean way.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def main(argv: list[str] | None = None) -> int:
    arguments = _parse_args(argv)
    _configure_logging(arguments.log_level)
    log = logging.getLogger("lora_trainer")
    if arguments.processes > 1 and "RANK" not in os.environ:
        from lora_trainer.launch import launch

        # An unreadable or invalid config fails here, before N workers start only to fail the same way.
        try:
            load_config(arguments.config)
        except InvalidInputError as error:
            log.error("%s", error)
            return EXIT_INVALID_INPUT
        return launch(_worker_arguments(arguments), processes=arguments.processes, log=log)

    stop_event = threading.Event()
    _install_stop_handler(stop_event, log)

    # Import late: torch and diffusers take seconds to import, and --help needs neither.
    import torch

    from lora_trainer.distributed import Processes
    from lora_trainer.run import run_training

    processes = None
    try:
        config = load_config(arguments.config)
        base_dir = arguments.base_dir or arguments.config.resolve().parent
        log = logging.getLogger(f"lora_trainer.{config.run.namespace}.{config.run.name}")
        processes = Processes.from_environment(requested_device=config.device, log=log)
        outcome = run_training(config, base_dir=base_dir, log=log, stop_event=stop_event, processes=processes)
    except (InvalidInputError, NonFiniteLossError) as error:
        # Neither gets better on a retry: the same input gives the same failure.
        log.error("%s", error)
        return EXIT_INVALID_INPUT
    except torch.cuda.OutOfMemoryError as error:
        log.error("%s on the GPU: %s. A retry with half of training.batchSize may fit",
                  OUT_OF_MEMORY_MARK, str(error).splitlines()[0])
        return EXIT_OUT_OF_MEMORY
    except Exception:
        log.exception("training failed")
        return 1
    finally:
        if processes is not None:
            processes.close()

    if outcome.status == "already-done":
        log.info("run %s is already complete; nothing to do", outcome.store.uri())
    elif outcome.status == "stopped":
        log.log(logging.WARNING if _is_main_process() else logging.INFO, "stopped after a checkpoint; run again to resume")
        return EXIT_STOPPED
    else:
        log.info("run finished: %s", outcome.store.uri())
    return 0


if __name__ == "__main__":
    sys.exit(main())
