"""Text dataset files from file://, pvc://, s3:// and https:// sources, on the local disk.

It reuses the image sources' URI parsing, listing, bounded downloads and error mapping,
and selects text files (the extensions of lora_trainer.text.readers) instead of images.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from minio.error import S3Error
from urllib3.exceptions import HTTPError

from lora_operator.api.training_spec import DataSource
from lora_trainer.errors import InvalidInputError, TrainerError
from lora_trainer.fetch_guard import FetchGuard, FetchPolicy
from lora_trainer.sources import FetchedFile, SourceOptions
from lora_trainer.sources import https as https_source
from lora_trainer.sources import s3 as s3_source
from lora_trainer.sources.common import is_hidden, matches_include
from lora_trainer.sources.local import file_uri_path, list_folder, pvc_uri_path
from lora_trainer.storage import s3_client_from_env
from lora_trainer.text.readers import READERS, reader_for


def fetch_text_source(source: DataSource, *, destination: Path, options: SourceOptions) -> list[FetchedFile]:
    """Make the text files of one source available locally; names are relative to the source.

    Raises InvalidInputError, naming the URI and the fix, when the source has no text file.
    """
    uri = source.uri
    scheme = uri.partition("://")[0]
    if scheme in ("file", "pvc"):
        path = file_uri_path(uri, base_dir=options.base_dir) if scheme == "file" else pvc_uri_path(uri, pvc_root=options.pvc_root)
        files = _local_files(uri, path, include=source.include)
    elif scheme == "s3":
        files = _s3_files(uri, destination=destination, include=source.include, options=options)
    elif scheme == "https":
        files = _https_file(uri, destination=destination, include=source.include, options=options)
    else:
        raise InvalidInputError(f"unsupported data source {uri!r}: use file://, pvc://claim/path, s3://bucket/prefix or https://")
    if not files:
        patterns = ", ".join(source.include) if source.include else "none, so every text file"
        raise InvalidInputError(
            f"source {uri} contains no text file (include patterns: {patterns}). Check the URI and the include "
            f"patterns; supported extensions: {' '.join(sorted(READERS))}"
        )
    return files


def select_text_files(names: Iterable[str], *, include: Sequence[str]) -> list[str]:
    """Return the visible names with a supported text extension that match include, sorted."""
    return sorted(
        name for name in set(names)
        if not is_hidden(name) and reader_for(name) is not None and matches_include(name, include)
    )


def _local_files(uri: str, path: Path, *, include: Sequence[str]) -> list[FetchedFile]:
    if path.is_file():
        return [_fetched(uri, path, path.name)] if reader_for(path.name) else []
    if not path.is_dir():
        raise InvalidInputError(f"source {uri} not found: {path} is neither a file nor a folder. Check the path")
    return [_fetched(uri, path / name, name) for name in select_text_files(list_folder(path), include=include)]


def _fetched(uri: str, path: Path, name: str) -> FetchedFile:
    return FetchedFile(name=name, path=path, source_uri=uri, size_bytes=path.stat().st_size)


def _s3_files(uri: str, *, destination: Path, include: Sequence[str], options: SourceOptions) -> list[FetchedFile]:
    bucket, prefix = s3_source.parse_s3_uri(uri)
    try:
        client = s3_client_from_env(endpoint=options.s3_endpoint, secure=options.s3_secure, region=options.s3_region)
    except ValueError as error:
        raise InvalidInputError(f"cannot read {uri}: {error}") from error
    try:
        # NOTE: these helpers are private to the image sources; a text-aware fetch_source would replace this.
        listing = s3_source._list_objects(client, bucket=bucket, prefix=prefix, options=options)
        names = select_text_files(listing.sizes_by_name, include=() if listing.single_object else include)
        return [
            s3_source._download(
                client, uri=uri, bucket=bucket, key=listing.key_prefix + name, name=name,
                size=listing.sizes_by_name[name], destination=destination, options=options,
            )
            for name in names
        ]
    except S3Error as error:
        raise s3_source._s3_failure(error, uri=uri, endpoint=options.s3_endpoint) from error
    except HTTPError as error:
        raise TrainerError(f"cannot reach the S3 endpoint {options.s3_endpoint or 's3.amazonaws.com'} for {uri}: {error}; the run retries") from error


def _https_file(uri: str, *, destination: Path, include: Sequence[str], options: SourceOptions) -> list[FetchedFile]:
    if include:
        raise InvalidInputError(f"include patterns do not apply to the https source {uri}: remove them")
    name = https_source._name_from_url(uri)
    if reader_for(name) is None:
        raise InvalidInputError(
            f"https source {uri} does not end in a text file name: use a URL ending in one of {' '.join(sorted(READERS))}"
        )
    # The same guarded client as image sources: every hop and connection is checked against the fetch policy.
    client = options.http_client or FetchGuard(FetchPolicy.from_env()).client(timeout=https_source.DEFAULT_TIMEOUT)
    try:
        # NOTE: the server must send text/plain; JSONL or CSV served as application/json or text/csv is rejected.
        download = https_source._download(
            client, uri, destination=destination, name=name, expect="text", max_bytes=options.max_file_bytes
        )
    finally:
        if options.http_client is None:
            client.close()
    return [FetchedFile(name=name, path=download.path, source_uri=uri, size_bytes=download.size)]
