"""Fetching training files from file://, pvc://, s3:// and https:// sources to the local disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lora_operator.api.training_spec import DataSource

from lora_trainer.errors import InvalidInputError
from lora_trainer.sources.common import FetchedFile, SourceOptions, select_files
from lora_trainer.sources.https import fetch_https
from lora_trainer.sources.local import fetch_local, file_uri_path, pvc_uri_path
from lora_trainer.sources.s3 import fetch_s3
from lora_trainer.sources.url_check import check_url

__all__ = ["FetchedFile", "SourceOptions", "check_url", "fetch_source", "select_files"]


def fetch_source(source: DataSource, *, destination: Path, options: SourceOptions) -> list[FetchedFile]:
    """Make the images of one source, with their sidecar captions, available on the local disk.

    file:// and pvc:// files are read in place. s3:// and https:// files are downloaded
    under destination. Names are relative to the source. Raises InvalidInputError,
    naming the URI and the fix, when the source yields no image file.
    """
    uri = source.uri
    scheme = uri.partition("://")[0]
    if scheme == "file":
        path = file_uri_path(uri, base_dir=options.base_dir)
        hint = f"Relative file:// paths resolve against {options.base_dir}."
        return fetch_local(uri, path, include=source.include, options=options, missing_hint=hint)
    if scheme == "pvc":
        path = pvc_uri_path(uri, pvc_root=options.pvc_root)
        hint = "Check that the claim is mounted into the trainer and that the path inside it is right."
        return fetch_local(uri, path, include=source.include, options=options, missing_hint=hint)
    if scheme == "s3":
        return fetch_s3(uri, destination=destination, include=source.include, options=options)
    if scheme == "https":
        return _fetch_https_with_include(uri, destination=destination, include=source.include, options=options)
    raise InvalidInputError(
        f"unsupported data source {uri!r}: use file://, pvc://claim/path, s3://bucket/prefix or https://"
    )


def _fetch_https_with_include(
    uri: str, *, destination: Path, include: Sequence[str], options: SourceOptions
) -> list[FetchedFile]:
    if include:
        # One URL is one file, so include patterns have nothing to choose from.
        raise InvalidInputError(f"include patterns do not apply to the https source {uri}: remove them")
    return fetch_https(uri, destination=destination, options=options)
