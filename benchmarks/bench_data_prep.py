"""Images per second of image-dataset preparation: one worker against every core, threads against processes.

Preparation covers hashing, header checks, decoding, EXIF orientation, RGB conversion,
bucketing, Lanczos resizing and writing the PNGs. Fetching is a local file:// read.
Each photo is copied --copies times with distinct trailing bytes, which decoders ignore,
so that the copies are not skipped as duplicates and worker start-up is spread over more images.

    python benchmarks/bench_data_prep.py [--photos DIR] [--copies 5] [--resolution 512] [--rounds 5]

The photos folder defaults to the sample photos that the tests use (tests/datasets.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lora_operator.api.training_spec import DatasetSpec

from lora_trainer.data.images import is_image_name
from lora_trainer.captioning.captioner import CAPTION_IMAGE_SIDE
from lora_trainer.data.prepare import Parallelism, available_cores, prepare_image_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_photos_dir() -> Path:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.datasets import PHOTOS_DIR

    return PHOTOS_DIR


def make_workload(photos: Path, folder: Path, *, copies: int) -> None:
    """Copy every image of photos into folder copies times, each copy with one distinct trailing byte."""
    for photo in sorted(photos.iterdir()):
        if not is_image_name(photo.name):
            continue
        data = photo.read_bytes()
        for copy in range(copies):
            (folder / f"{photo.stem}-{copy}{photo.suffix}").write_bytes(data + bytes([copy % 256]))


def measure(
    spec: DatasetSpec, *, workers: int, parallelism: Parallelism, rounds: int, caption_image_side: int | None
) -> tuple[float, int]:
    """Return the median seconds of one preparation over rounds, and the number of images."""
    seconds = []
    count = 0
    quiet = logging.getLogger("bench_data_prep.quiet")
    quiet.setLevel(logging.ERROR)
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="bench-data-prep-") as work_dir:
            start = time.perf_counter()
            records = prepare_image_dataset(
                spec, work_dir=Path(work_dir), base_dir=Path.cwd(), workers=workers, parallelism=parallelism, log=quiet,
                caption_image_side=caption_image_side,
            )
            seconds.append(time.perf_counter() - start)
            count = len(records)
    return statistics.median(seconds), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=None, help="Folder of images to prepare (default: the sample photos).")
    parser.add_argument("--copies", type=int, default=5, help="Copies of each photo in the workload (default 5).")
    parser.add_argument("--resolution", type=int, default=512, help="Training resolution in pixels (default 512).")
    parser.add_argument("--rounds", type=int, default=5, help="Preparations per configuration; the median is reported.")
    parser.add_argument("--no-caption-copies", action="store_true",
                        help="Skip the captioning copies, as a run with captioning disabled does.")
    arguments = parser.parse_args()
    caption_image_side = None if arguments.no_caption_copies else CAPTION_IMAGE_SIDE

    photos = (arguments.photos or default_photos_dir()).resolve()
    cores = available_cores()
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.machine()}, {cores} usable cores, Python {platform.python_version()}, {platform.system()}")
    # Other processes competing for the cores distort the comparison, so the load is printed with it.
    print(f"load average before the run: {os.getloadavg()[0]:.1f}")
    print(f"photos: {photos} x {arguments.copies} copies, resolution {arguments.resolution}, median of {arguments.rounds} rounds, "
          f"{'no captioning copies' if caption_image_side is None else f'captioning copies at {caption_image_side} px'}")

    with tempfile.TemporaryDirectory(prefix="bench-data-prep-input-") as input_dir:
        make_workload(photos, Path(input_dir), copies=arguments.copies)
        spec = DatasetSpec(sources=[{"uri": Path(input_dir).as_uri()}], resolution=arguments.resolution)
        configurations: list[tuple[int, Parallelism]] = [(1, "threads"), (cores, "threads"), (cores, "processes")]
        for workers, parallelism in configurations:
            seconds, count = measure(
                spec, workers=workers, parallelism=parallelism, rounds=arguments.rounds, caption_image_side=caption_image_side
            )
            print(
                f"{workers:>3} worker(s), {parallelism:<9}: {count / seconds:7.1f} images/s "
                f"({count} images in {seconds:.3f} s)"
            )


if __name__ == "__main__":
    main()
