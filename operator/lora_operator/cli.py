"""The `lora-operator` command line: CRD generation and local mode."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from lora_operator.api.training import ManifestError, load_training_manifest

DEFAULT_OUTPUT = "./lora-runs"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lora-operator", description="Train LoRA adapters from LoRATraining resources.")
    commands = parser.add_subparsers(dest="command", required=True)

    crds = commands.add_parser("crds", help="Generate or check the CustomResourceDefinitions.")
    crds.add_argument("action", choices=["write", "check"], help="write: regenerate the files; check: fail when stale.")
    crds.add_argument("--dir", type=Path, default=Path("crds"), help="Folder of the CRD files (default: crds).")

    operator = commands.add_parser("run", help="Run the Kubernetes operator (settings from LORA_OPERATOR_* variables).")
    operator.add_argument("--metrics-port", type=int, default=8080, help="Port of the Prometheus /metrics endpoint.")
    operator.add_argument("--health-port", type=int, default=8081, help="Port of the /healthz liveness endpoint.")
    operator.add_argument("--bind-address", default="0.0.0.0", help="Address of the metrics and health endpoints.")
    operator.add_argument("--log-level", default="INFO", help="Python logging level (DEBUG, INFO, WARNING).")

    local = commands.add_parser("local", help="Run trainings on this machine, without Kubernetes.")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    run = local_commands.add_parser("run", help="Run one LoRATraining manifest; run it again to resume.")
    run.add_argument("manifest", type=Path, help="LoRATraining YAML file.")
    run.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        help="Folder, or s3://bucket/prefix, that contains the runs (default: ./lora-runs).",
    )
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="Where to train (default: auto).")
    run.add_argument("--s3-endpoint", default="", help="host:port of the S3 API when --output is s3://.")
    run.add_argument("--s3-insecure", action="store_true", help="Talk plain HTTP to the S3 endpoint.")
    _add_local_notion_parser(local_commands)
    return parser


def _add_local_notion_parser(local_commands: argparse._SubParsersAction) -> None:
    notion = local_commands.add_parser(
        "notion", help="Turn the rows of a NotionSource's database into local runs, one at a time, with write-back."
    )
    notion.add_argument("manifest", type=Path, help="NotionSource YAML file.")
    notion.add_argument("--output", default=DEFAULT_OUTPUT, help="Folder, or s3://bucket/prefix, of the runs (default: ./lora-runs).")
    notion.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="Where to train (default: auto).")
    notion.add_argument("--s3-endpoint", default="", help="host:port of the S3 API when --output is s3://.")
    notion.add_argument("--s3-insecure", action="store_true", help="Talk plain HTTP to the S3 endpoint.")
    notion.add_argument("--token-env", default="", help="Environment variable with the Notion token (default: spec.tokenEnv).")
    notion.add_argument("--api-url", default="", help="Base URL of the Notion API (default: https://api.notion.com).")
    notion.add_argument("--state-dir", type=Path, default=None,
                        help="Folder of the claimed rows' state (default: OUTPUT/.notion/NAMESPACE-NAME for a local output).")
    notion.add_argument("--once", action="store_true", help="Sync once, run the claimed rows, then exit.")


def _crds(arguments: argparse.Namespace, console: Console) -> int:
    from lora_operator.crds import stale_crds, write_crds

    if arguments.action == "write":
        for path in write_crds(arguments.dir):
            console.print(f"wrote {path}")
        return 0
    stale = stale_crds(arguments.dir)
    for path in stale:
        console.print(f"[red]stale:[/] {path}; run `lora-operator crds write`")
    return 1 if stale else 0


def _local_run(arguments: argparse.Namespace, console: Console) -> int:
    from lora_operator.local.runner import LocalRunOptions, run_local

    try:
        training = load_training_manifest(arguments.manifest)
    except ManifestError as error:
        console.print(f"[red]{error}[/]", highlight=False)
        return 2
    output = arguments.output
    if "://" not in output:
        output = f"file://{Path(output).resolve()}"
    options = LocalRunOptions(
        output=output,
        base_dir=arguments.manifest.resolve().parent,
        device=arguments.device,
        s3_endpoint=arguments.s3_endpoint,
        s3_secure=not arguments.s3_insecure,
    )
    return run_local(training, options, console=console)


def _local_notion(arguments: argparse.Namespace, console: Console) -> int:
    from lora_operator.local.notion import run_from_arguments

    return run_from_arguments(arguments, console=console)


def _run_operator(arguments: argparse.Namespace) -> int:
    import logging

    from lora_operator.operator_app import run_operator
    from lora_operator.settings import OperatorSettings

    logging.basicConfig(level=arguments.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_operator(
        settings=OperatorSettings(),
        bind_address=arguments.bind_address,
        metrics_port=arguments.metrics_port,
        health_port=arguments.health_port,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = _build_parser().parse_args(argv)
    # Soft wrap keeps long paths and URIs on one line, so they can be copied.
    console = Console(stderr=False, soft_wrap=True)
    if arguments.command == "crds":
        return _crds(arguments, console)
    if arguments.command == "run":
        return _run_operator(arguments)
    if arguments.local_command == "notion":
        return _local_notion(arguments, console)
    return _local_run(arguments, console)


if __name__ == "__main__":
    sys.exit(main())
