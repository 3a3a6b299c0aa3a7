"""Preparation of an image dataset: fetch the sources, check and convert every image, read sidecars."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Literal

import httpx
from lora_operator.api.training_spec import DatasetSpec
from PIL import Image

from lora_trainer.data.captions import match_sidecars, read_sidecar
from lora_trainer.data.images import (
    DUPLICATE,
    ConversionSettings,
    check_and_convert,
    hash_file,
    is_image_name,
    skip_reason,
)
from lora_trainer.data.manifest import summarize
from lora_trainer.data.records import ImageRecord
from lora_trainer.errors import InvalidInputError
from lora_trainer.sources import FetchedFile, SourceOptions, fetch_source

logger = logging.getLogger(__name__)

Parallelism = Literal["threads", "processes"]
# Threads start at once and share records without pickling. benchmarks/bench_data_prep.py
# compares them with processes. NOTE: whether threads scale with cores depends on Pillow
# releasing the GIL in its C code, which the 2-core, heavily shared machine that ran the
# benchmark could not show. There threads beat processes and neither scaled past one worker.
DEFAULT_PARALLELISM: Parallelism = "threads"
TOP_SKIP_CAUSES = 5


class NoUsableImagesError(InvalidInputError):
    """No image of the dataset was accepted; records keeps every file's skip reason for the manifest."""

    def __init__(self, message: str, *, records: list[ImageRecord]) -> None:
        super().__init__(message)
        self.records = records


def prepare_image_dataset(
    spec: DatasetSpec,
    *,
    work_dir: Path,
    base_dir: Path,
    s3_endpoint: str = "",
    s3_secure: bool = True,
    s3_region: str = "",
    http_client: httpx.Client | None = None,
    workers: int = 0,
    parallelism: Parallelism = DEFAULT_PARALLELISM,
    log: logging.Logger | None = None,
    caption_image_side: int | None = None,
) -> list[ImageRecord]:
    """Fetch every source, check and convert each image, and attach sidecar captions.

    Returns one record per image file in (source, name) order, accepted or skipped.
    Accepted images are RGB PNGs at their bucket size under work_dir/images. With
    ``caption_image_side``, an image whose short side is larger also gets a copy of
    that short side for captioning (record.caption_image_path). workers=0
    uses every available core. Raises NoUsableImagesError (an InvalidInputError that
    carries the records, so the caller can still write the manifest) when no image is accepted.
    """
    log = log or logger
    options = SourceOptions(
        base_dir=base_dir,
        caption_extension=spec.caption_extension,
        max_file_bytes=spec.max_file_bytes,
        s3_endpoint=s3_endpoint,
        s3_secure=s3_secure,
        s3_region=s3_region,
        http_client=http_client,
    )
    fetched = fetch_all(spec, destination=work_dir / "sources", options=options)
    records, paths, sidecars = plan_records(fetched, caption_extension=spec.caption_extension)
    settings = ConversionSettings.from_spec(spec, output_dir=work_dir / "images", caption_image_side=caption_image_side)
    check_images(records, paths, settings=settings, workers=workers, parallelism=parallelism)
    attach_sidecars(records, sidecars, log=log)

    for record in records:
        if not record.accepted:
            log.warning("Skipped %s", record.reason)
    summary = summarize(records)
    log.info("Dataset prepared: %s", summary.describe())
    if summary.accepted == 0:
        raise _no_images_error(spec, summary.skipped_by_cause, records=records)
    return records


def fetch_all(spec: DatasetSpec, *, destination: Path, options: SourceOptions) -> list[list[FetchedFile]]:
    """Fetch each source into its own numbered folder under destination."""
    return [
        fetch_source(source, destination=destination / f"{index:02d}", options=options)
        for index, source in enumerate(spec.sources)
    ]


def plan_records(
    fetched: list[list[FetchedFile]], *, caption_extension: str
) -> tuple[list[ImageRecord], list[Path | None], dict[str, Path]]:
    """Create one record per image file, sorted by source and name, with its path and sidecar.

    A name already used by an earlier source is prefixed with 'source-N/' (N counted
    from 1) so that names stay unique in the manifest and metadata.csv.
    """
    records: list[ImageRecord] = []
    paths: list[Path | None] = []
    sidecars: dict[str, Path] = {}
    used_names: set[str] = set()
    for index, files in enumerate(fetched, start=1):
        by_name = {file.name: file for file in files}
        sidecar_names = match_sidecars(sorted(by_name), caption_extension=caption_extension)
        for name in sorted(by_name):
            file = by_name[name]
            if not is_image_name(name):
                continue
            unique = _unique_name(name, source_number=index, used_names=used_names)
            record = ImageRecord(name=unique, source_uri=file.source_uri, size_bytes=file.size_bytes)
            if file.skip_reason:
                record.skip(file.skip_reason)
            records.append(record)
            paths.append(file.path)
            sidecar = by_name.get(sidecar_names.get(name, ""))
            if sidecar is not None and sidecar.path is not None:
                sidecars[unique] = sidecar.path
    return records, paths, sidecars


def _unique_name(name: str, *, source_number: int, used_names: set[str]) -> str:
    unique = name
    attempt = 1
    while unique in used_names:
        suffix = "" if attempt == 1 else f"-{attempt}"
        unique = f"source-{source_number}{suffix}/{name}"
        attempt += 1
    used_names.add(unique)
    return unique


def check_images(
    records: list[ImageRecord],
    paths: list[Path | None],
    *,
    settings: ConversionSettings,
    workers: int,
    parallelism: Parallelism,
) -> None:
    """Hash every file, skip exact duplicates, then check and convert the rest, in parallel, in place."""
    raise_pillow_pixel_limit(settings.max_pixels)
    worker_count = workers or available_cores()
    with _executor(parallelism, worker_count, settings.max_pixels) as pool:
        pending = [index for index, record in enumerate(records) if record.accepted]
        hash_one = partial(hash_file, max_file_bytes=settings.max_file_bytes)
        hashed = pool.map(hash_one, [records[i] for i in pending], [paths[i] for i in pending])
        _store_results(records, pending, hashed)
        mark_duplicates(records)

        pending = [index for index, record in enumerate(records) if record.accepted]
        converted = pool.map(check_and_convert, [records[i] for i in pending], [paths[i] for i in pending],
                             repeat(settings))
        _store_results(records, pending, converted)


def mark_duplicates(records: Iterable[ImageRecord]) -> None:
    """Skip every accepted record whose sha256 an earlier record already has."""
    first_by_sha: dict[str, str] = {}
    for record in records:
        if not record.accepted or not record.sha256:
            continue
        original = first_by_sha.setdefault(record.sha256, record.name)
        if original != record.name:
            record.skip(skip_reason(record.name, DUPLICATE, f"same bytes as {original}"))
            record.duplicate_of = original


def attach_sidecars(records: list[ImageRecord], sidecars: dict[str, Path], *, log: logging.Logger) -> None:
    """Read the sidecar caption of every accepted record that has one."""
    for record in records:
        sidecar = sidecars.get(record.name)
        if not record.accepted or sidecar is None:
            continue
        try:
            caption = read_sidecar(sidecar, name=sidecar.name)
        except OSError as error:
            record.warnings.append(f"sidecar {sidecar.name} unreadable: {error}")
            log.warning("Sidecar %s of %s unreadable: %s", sidecar.name, record.name, error)
            continue
        for warning in caption.warnings:
            record.warnings.append(warning)
            log.warning("%s", warning)
        if caption.text:
            record.caption = caption.text
            record.caption_source = "sidecar"


def available_cores() -> int:
    """Return the number of cores this process may run on (its CPU affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def raise_pillow_pixel_limit(max_pixels: int) -> None:
    """Raise Pillow's process-wide decompression-bomb limit to max_pixels when that is higher.

    check_header enforces dataset.maxPixels before decoding. Pillow raises
    DecompressionBombError from the header alone above 2 x Image.MAX_IMAGE_PIXELS (about
    179 million pixels by default in Pillow 13), which must not reject images that the
    spec allows. The limit is only ever raised, never lowered.
    """
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _executor(parallelism: Parallelism, workers: int, max_pixels: int) -> Executor:
    if parallelism == "processes":
        # forkserver: forking a process that runs torch threads can deadlock the child.
        context = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(workers, mp_context=context, initializer=raise_pillow_pixel_limit,
                                   initargs=(max_pixels,))
    return ThreadPoolExecutor(workers, thread_name_prefix="data-prep")


def _store_results(records: list[ImageRecord], indices: list[int], results: Iterable[ImageRecord]) -> None:
    # Worker processes return copies, so the results replace the records by position.
    for index, result in zip(indices, results, strict=True):
        records[index] = result


def _no_images_error(
    spec: DatasetSpec, skipped_by_cause: dict[str, int], *, records: list[ImageRecord]
) -> NoUsableImagesError:
    sources = ", ".join(source.uri for source in spec.sources)
    top = list(skipped_by_cause.items())[:TOP_SKIP_CAUSES]
    causes = "; ".join(f"{count} {cause}" for cause, count in top) or "no image files"
    message = (
        f"no usable image in {sources} (skipped: {causes}). The log lists each skipped file "
        "with its reason: fix or replace the files, or relax dataset.minSide, dataset.maxPixels "
        "or dataset.maxFileBytes"
    )
    return NoUsableImagesError(message, records=records)

