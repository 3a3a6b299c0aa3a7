"""Run the test stack for manual work until Ctrl-C or SIGTERM; scripts/dev-cluster starts this module."""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from tests.harness import versions
from tests.harness.process import ComponentProcess, install_cleanup_handlers
from tests.harness.seaweed import SeaweedS3
from tests.harness.stack import ControlPlane, Workspace, start_control_plane, start_s3

logger = logging.getLogger("dev-cluster")

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-components"
HEALTH_CHECK_INTERVAL_SECONDS = 2.0


def _parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dev-cluster",
        description="Start etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok with two fake "
        "GPU nodes, and SeaweedFS S3, all on 127.0.0.1; stop them on Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--no-s3", action="store_true", help="do not start SeaweedFS")
    parser.add_argument("--no-kubernetes", action="store_true", help="do not start the Kubernetes control plane")
    return parser.parse_args(argv)


def _build_components() -> Path:
    bin_dir = versions.components_bin_dir()
    if versions.missing_binaries(bin_dir):
        logger.info("building the pinned binaries with %s", BUILD_SCRIPT)
        subprocess.run([str(BUILD_SCRIPT)], check=True, stdout=subprocess.DEVNULL)
    return bin_dir


def _environment_lines(control_plane: ControlPlane | None, s3: SeaweedS3 | None) -> list[str]:
    lines = []
    if control_plane is not None:
        lines.append(f"export KUBECONFIG={shlex.quote(str(control_plane.kubeconfig))}")
        lines.append(f"export PATH={shlex.quote(str(control_plane.bin_dir))}:$PATH")
    if s3 is not None:
        lines.append(f"export S3_ENDPOINT={s3.endpoint}")
        lines.append(f"export S3_ACCESS_KEY={shlex.quote(s3.access_key)}")
        lines.append(f"export S3_SECRET_KEY={shlex.quote(s3.secret_key)}")
        lines.append("export S3_SECURE=false")
    return lines


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _wait_while_running(processes: list[ComponentProcess]) -> int:
    """Block until a signal ends the wait (return 0) or a component exits (return 1)."""
    try:
        while True:
            for process in processes:
                if not process.is_running():
                    logger.error("%s", process.describe_failure("exited; stopping the stack"))
                    return 1
            time.sleep(HEALTH_CHECK_INTERVAL_SECONDS)
    except (KeyboardInterrupt, SystemExit):
        return 0


def main(argv: list[str] | None = None) -> int:
    arguments = _parse_arguments(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    install_cleanup_handlers()
    # SIGTERM and SIGHUP unwind like Ctrl-C, so the finally block below
    # stops the components and removes the run data.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_system_exit)

    workspace = Workspace()
    control_plane: ControlPlane | None = None
    s3: SeaweedS3 | None = None
    started = time.monotonic()
    try:
        if not arguments.no_s3:
            s3 = start_s3(workspace=workspace)
        if not arguments.no_kubernetes:
            control_plane = start_control_plane(bin_dir=_build_components(), workspace=workspace)

        env_file = workspace.root / "dev-cluster.env"
        env_lines = _environment_lines(control_plane, s3)
        env_file.write_text("\n".join(env_lines) + "\n")
        env_file.chmod(0o600)
        print(f"\nStack ready in {time.monotonic() - started:.1f} s. Environment (also in {env_file}):")
        print("\n".join(env_lines))
        print(f"Component logs: {workspace.log_dir}\nPress Ctrl-C to stop.\n", flush=True)

        processes = []
        if control_plane is not None:
            processes += control_plane.processes
        if s3 is not None:
            processes.append(s3.process)
        return _wait_while_running(processes)
    finally:
        if control_plane is not None:
            control_plane.stop()
        if s3 is not None:
            s3.stop()
        workspace.remove_run_data()
        print(f"Stopped. Component logs: {workspace.log_dir}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
