"""Artifact stores: the run folder on a local disk or under an S3 prefix (MinIO client).

Keys are relative to the run folder and use forward slashes, for example
``checkpoints/step-000200/adapter.safetensors``.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error


class ArtifactStore(Protocol):
    """The storage of one run's files."""

    def put_bytes(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def download(self, key: str, path: Path) -> None: ...
    def list_keys(self, prefix: str = "") -> list[str]: ...
    def list_sizes(self, prefix: str = "") -> dict[str, int]: ...
    def delete_prefix(self, prefix: str) -> None: ...
    def uri(self, key: str = "") -> str: ...


class LocalStore:
    """A run folder on the local disk. Writes are atomic: a temporary file renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise ValueError(f"artifact key {key!r} points outside the run folder {self.root}")
        return path

    def put_bytes(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.partial")
        shutil.copyfile(path, temporary)
        os.replace(temporary, target)

    def get_bytes(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def download(self, key: str, path: Path) -> None:
        shutil.copyfile(self._path(key), path)

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                keys.append(path.relative_to(self.root).as_posix())
        return sorted(keys)

    def list_sizes(self, prefix: str = "") -> dict[str, int]:
        return {key: self._path(key).stat().st_size for key in self.list_keys(prefix)}

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    def uri(self, key: str = "") -> str:
        return f"file://{self.root / key}" if key else f"file://{self.root}"


class S3Store:
    """A run folder under ``s3://bucket/prefix``. S3 object writes are atomic by nature."""

    def __init__(self, client: Minio, *, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(self.bucket, self._key(key), io.BytesIO(data), len(data), content_type=content_type)

    def put_file(self, key: str, path: Path) -> None:
        self.client.fput_object(self.bucket, self._key(key), str(path))

    def get_bytes(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(self.bucket, self._key(key))
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject"):
                return None
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def download(self, key: str, path: Path) -> None:
        self.client.fget_object(self.bucket, self._key(key), str(path))

    def list_keys(self, prefix: str = "") -> list[str]:
        full_prefix = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        objects = self.client.list_objects(self.bucket, prefix=full_prefix, recursive=True)
        return sorted(item.object_name[strip:] for item in objects if not item.is_dir)

    def list_sizes(self, prefix: str = "") -> dict[str, int]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        objects = self.client.list_objects(self.bucket, prefix=self._key(prefix), recursive=True)
        return {item.object_name[strip:]: item.size for item in objects if not item.is_dir}

    def delete_prefix(self, prefix: str) -> None:
        victims = [DeleteObject(self._key(key)) for key in self.list_keys(prefix)]
        for failure in self.client.remove_objects(self.bucket, victims):
            raise OSError(f"failed to delete s3://{self.bucket}/{failure.name}: {failure.message}")

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._key(key)}" if key else f"s3://{self.bucket}/{self.prefix}"


def s3_client_from_env(*, endpoint: str, secure: bool, region: str = "") -> Minio:
    """Build a MinIO client with credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""
    access_key = os.environ.get("AWS_ACCESS_KEY_ID", "")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    if not access_key or not secret_key:
        raise ValueError(
            "S3 credentials are missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the trainer's environment"
        )
    return Minio(endpoint or "s3.amazonaws.com", access_key=access_key, secret_key=secret_key,
                 secure=secure, region=region or None)


def open_store(uri: str, *, endpoint: str = "", secure: bool = True, region: str = "") -> ArtifactStore:
    """Open the run folder that ``file://`` or ``s3://bucket/prefix`` names."""
    if uri.startswith("file://"):
        # Taken verbatim, not URL-decoded, so folder names with spaces or '#' stay as they are.
        return LocalStore(Path(uri[len("file://"):]))
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        client = s3_client_from_env(endpoint=endpoint, secure=secure, region=region)
        return S3Store(client, bucket=parsed.netloc, prefix=parsed.path)
    raise ValueError(f"unsupported output URI {uri!r}: use file:///path or s3://bucket/prefix")
