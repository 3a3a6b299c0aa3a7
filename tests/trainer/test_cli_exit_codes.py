"""`lora-train` maps each way a run ends onto the exit code that the operator acts on."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
import yaml

from lora_operator.api.trainer_config import OutputLocation, RunIdentity, TrainerConfig
from lora_operator.api.training_spec import LoRATrainingSpec
from lora_trainer import cli, run
from lora_trainer.errors import InvalidInputError

pytestmark = pytest.mark.trainer


@pytest.fixture(autouse=True)
def restore_signal_handlers():
    """main() installs its SIGTERM and SIGINT handlers; give pytest its own back afterwards."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    spec = LoRATrainingSpec.model_validate(
        {"baseModel": "builtin://tiny-sd", "dataset": {"sources": [{"uri": "file:///photos"}]}}
    )
    config = TrainerConfig(run=RunIdentity(name="codes", uid="uid-1"), output=OutputLocation(uri=tmp_path.as_uri()), spec=spec)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.to_wire()), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InvalidInputError("dataset.sources[0] is empty"), 42),
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), 137),
        (OSError("connection reset by peer"), 1),
    ],
)
def test_failure_exit_code(
    monkeypatch: pytest.MonkeyPatch, config_path: Path, caplog: pytest.LogCaptureFixture, error: Exception, expected: int
) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(run, "run_training", fail)

    assert cli.main(["--config", str(config_path)]) == expected
    assert str(error).splitlines()[0] in caplog.text


def test_invalid_config_exits_42(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("run: {name: x}\n", encoding="utf-8")

    assert cli.main(["--config", str(path)]) == 42


def test_processes_below_one_rejected(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--config", str(config_path), "--processes", "0"])

    assert exit_info.value.code == 2
    assert "--processes must be at least 1, got 0" in capsys.readouterr().err


def test_launcher_checks_config_first(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing = tmp_path / "missing.yaml"

    assert cli.main(["--config", str(missing), "--processes", "2"]) == 42
    assert "cannot read trainer config" in caplog.text
    assert "starting 2 training processes" not in caplog.text
