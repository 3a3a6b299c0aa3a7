"""s3://bucket/prefix sources, downloaded with the MinIO client.

A prefix names a folder (every object below PREFIX/) or, when no object is below it,
a single object whose key is the prefix itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError

from lora_trainer.errors import InvalidInputError, TrainerError
from lora_trainer.sources.common import (
    COPY_CHUNK_BYTES,
    FetchedFile,
    FileTooLarge,
    SourceOptions,
    local_path_for,
    require_images,
    select_files,
    write_limited,
)
from lora_trainer.storage import s3_client_from_env

# Downloads are network-bound, so more threads than cores pay off; the MinIO client is thread-safe.
DOWNLOAD_THREADS = 8
# S3 error codes that no retry fixes: the request or the credentials are wrong.
MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchObject"})
DENIED_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"})


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Return (bucket, prefix) of s3://bucket/prefix; the prefix may be empty."""
    remainder = uri.removeprefix("s3://")
    bucket, _, prefix = remainder.partition("/")
    if not bucket:
        raise InvalidInputError(f"S3 URI {uri!r} names no bucket: use s3://bucket/prefix")
    return bucket, prefix


def fetch_s3(uri: str, *, destination: Path, include: Sequence[str], options: SourceOptions) -> list[FetchedFile]:
    """Download the images under an S3 prefix, and their sidecars, into destination."""
    bucket, prefix = parse_s3_uri(uri)
    try:
        client = s3_client_from_env(endpoint=options.s3_endpoint, secure=options.s3_secure, region=options.s3_region)
    except ValueError as error:
        raise InvalidInputError(f"cannot read {uri}: {error}") from error

    try:
        listing = _list_objects(client, bucket=bucket, prefix=prefix, options=options)
        # A single object named by the URI is fetched even when the include patterns do not match it.
        patterns = () if listing.single_object else include
        sizes_by_name = listing.sizes_by_name
        key_prefix = listing.key_prefix
        chosen = select_files(sizes_by_name, include=patterns, caption_extension=options.caption_extension)

        def download(name: str) -> FetchedFile:
            return _download(client, uri=uri, bucket=bucket, key=key_prefix + name, name=name,
                             size=sizes_by_name[name], destination=destination, options=options)

        with ThreadPoolExecutor(DOWNLOAD_THREADS, thread_name_prefix="s3-download") as pool:
            files = list(pool.map(download, chosen))
    except S3Error as error:
        raise _s3_failure(error, uri=uri, endpoint=options.s3_endpoint) from error
    except HTTPError as error:
        endpoint = options.s3_endpoint or "s3.amazonaws.com"
        raise TrainerError(f"cannot reach the S3 endpoint {endpoint} for {uri}: {error}; the run retries") from error
    return require_images(files, uri=uri, include=include)


@dataclass(frozen=True)
class _Listing:
    sizes_by_name: dict[str, int]
    """Object sizes by name relative to key_prefix."""
    key_prefix: str
    single_object: bool


def _list_objects(client: Minio, *, bucket: str, prefix: str, options: SourceOptions) -> _Listing:
    folder = f"{prefix.rstrip('/')}/" if prefix else ""
    sizes = {
        item.object_name[len(folder):]: item.size or 0
        for item in client.list_objects(bucket, prefix=folder, recursive=True)
        if not item.is_dir and item.object_name
    }
    if sizes or not prefix or prefix.endswith("/"):
        return _Listing(sizes_by_name=sizes, key_prefix=folder, single_object=False)

    # No object below PREFIX/: the prefix may be the key of a single object.
    stat = _stat_or_none(client, bucket, prefix)
    if stat is None:
        return _Listing(sizes_by_name={}, key_prefix=folder, single_object=False)
    parent = str(PurePosixPath(prefix).parent)
    parent_prefix = "" if parent == "." else f"{parent}/"
    name = PurePosixPath(prefix).name
    sizes = {name: stat.size or 0}
    sidecar_key = str(PurePosixPath(prefix).with_suffix(options.caption_extension))
    sidecar = _stat_or_none(client, bucket, sidecar_key)
    if sidecar is not None:
        sizes[PurePosixPath(sidecar_key).name] = sidecar.size or 0
    return _Listing(sizes_by_name=sizes, key_prefix=parent_prefix, single_object=True)


def _stat_or_none(client: Minio, bucket: str, key: str):  # noqa: ANN202  (minio's Object type)
    try:
        return client.stat_object(bucket, key)
    except S3Error as error:
        if error.code in MISSING_OBJECT_CODES:
            return None
        raise


def _download(
    client: Minio,
    *,
    uri: str,
    bucket: str,
    key: str,
    name: str,
    size: int,
    destination: Path,
    options: SourceOptions,
) -> FetchedFile:
    if size > options.max_file_bytes:
        reason = f"{name}: file too large ({size} bytes; dataset.maxFileBytes is {options.max_file_bytes})"
        return FetchedFile(name=name, path=None, source_uri=uri, size_bytes=size, skip_reason=reason)

    try:
        path = local_path_for(destination, name, uri=uri)
    except InvalidInputError:
        reason = f"{name}: unsafe object key (rename the object without '..' parts)"
        return FetchedFile(name=name, path=None, source_uri=uri, size_bytes=size, skip_reason=reason)
    response = client.get_object(bucket, key)
    try:
        written = write_limited(response.stream(COPY_CHUNK_BYTES), path, max_bytes=options.max_file_bytes)
    except FileTooLarge:
        # The object grew between the listing and the download.
        reason = f"{name}: file too large (more than {options.max_file_bytes} bytes; dataset.maxFileBytes)"
        return FetchedFile(name=name, path=None, source_uri=uri, size_bytes=size, skip_reason=reason)
    finally:
        response.close()
        response.release_conn()
    return FetchedFile(name=name, path=path, source_uri=uri, size_bytes=written)


def _s3_failure(error: S3Error, *, uri: str, endpoint: str) -> TrainerError:
    where = endpoint or "s3.amazonaws.com"
    if error.code == "NoSuchBucket":
        return InvalidInputError(f"bucket of {uri} not found at {where}: check the bucket name and the S3 endpoint")
    if error.code in DENIED_CODES:
        return InvalidInputError(
            f"access to {uri} denied by {where} ({error.code}): check AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY and the bucket policy"
        )
    return TrainerError(f"reading {uri} from {where} failed: {error.code}: {error.message}")
