"""Model URIs to local paths: builtin://, file://, pvc://, hf:// and s3:// (base and captioning models).

The returned path is a local folder (or file) that the loaders read, for example a diffusers
pipeline folder or an open_clip checkpoint folder. Downloads land in caches, so resolving
the same URI again downloads only what changed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote

from lora_trainer.errors import InvalidInputError, TrainerError
from lora_trainer.models.cache_dir import cache_root

SUPPORTED_SCHEMES = ("builtin", "file", "pvc", "hf", "s3")
DEFAULT_PVC_ROOT = "/mnt/pvc"
PLANNED_BUILTINS = ("tiny-sdxl",)
# Weight formats that the diffusers, transformers and open_clip folder loaders never read
# (single-file .ckpt originals, Flax, TensorFlow, ONNX), so hf:// skips downloading them.
HF_IGNORE_PATTERNS = ["*.ckpt", "*.msgpack", "*.h5", "*.onnx", "*.onnx_data", "*.ot", "*.tflite"]
# Sizes and ETags of the objects downloaded from one bucket, keyed by object key.
S3_STATE_FILE = ".s3-etags.json"


def resolve_model_path(
    uri: str,
    *,
    revision: str = "",
    s3_endpoint: str = "",
    s3_secure: bool = True,
    base_dir: Path | None = None,
) -> Path:
    """Return the local path of the model at ``uri``, building or downloading it when needed.

    ``revision`` applies to hf:// only. ``base_dir`` anchors relative file:// paths and
    defaults to the working directory. Raises InvalidInputError for unknown schemes, missing
    paths and repos that cannot be reached offline, and TrainerError for failures that a
    retry may fix (network, storage).
    """
    scheme, separator, rest = uri.partition("://")
    if not separator or not rest:
        raise InvalidInputError(
            f"model URI {uri!r} has no scheme: write it as SCHEME://..., one of "
            f"{', '.join(s + '://' for s in SUPPORTED_SCHEMES)} (a local folder is file:///absolute/path)"
        )
    if scheme == "builtin":
        return _resolve_builtin(uri, rest)
    if scheme == "file":
        return _existing(uri, _file_uri_path(rest, base_dir=base_dir), hint="check the path")
    if scheme == "pvc":
        hint = "check the path and that the claim is mounted under LORA_PVC_ROOT (default /mnt/pvc)"
        return _existing(uri, _pvc_path(uri, rest), hint=hint)
    if scheme == "hf":
        return _resolve_hf(uri, rest, revision=revision)
    if scheme == "s3":
        bucket, _, prefix = rest.partition("/")
        return _mirror_s3(uri, bucket=bucket, prefix=prefix.strip("/"), endpoint=s3_endpoint, secure=s3_secure)
    raise InvalidInputError(
        f"model URI {uri!r} has the unsupported scheme {scheme + '://'!r}: use one of "
        f"{', '.join(s + '://' for s in SUPPORTED_SCHEMES)}"
    )


def _resolve_builtin(uri: str, name: str) -> Path:
    # Imported here because each builder pulls in its model library.
    if name == "tiny-sd":
        from lora_trainer.models.builtin_sd import tiny_sd_path

        return tiny_sd_path()
    if name == "tiny-clip":
        from lora_trainer.models.builtin_clip import tiny_clip_path

        return tiny_clip_path()
    if name == "tiny-llama":
        from lora_trainer.models.builtin_llama import tiny_llama_path

        return tiny_llama_path()
    supported = "builtin://tiny-sd, builtin://tiny-clip, builtin://tiny-llama"
    if name in PLANNED_BUILTINS:
        raise InvalidInputError(f"builtin model {uri!r} is not available in this version: use {supported}")
    raise InvalidInputError(f"unknown builtin model {uri!r}: use {supported}")


def _file_uri_path(rest: str, *, base_dir: Path | None) -> Path:
    # file:///abs has an empty host, so `rest` starts with "/"; file://relative/path has none.
    path = Path(unquote(rest))
    if path.is_absolute():
        return path
    return (base_dir if base_dir is not None else Path.cwd()) / path


def _pvc_path(uri: str, rest: str) -> Path:
    claim, _, inner = rest.partition("/")
    if claim in ("", ".", ".."):
        raise InvalidInputError(f"model URI {uri!r} names no volume claim: write it as pvc://CLAIM/PATH")
    root = Path(os.environ.get("LORA_PVC_ROOT") or DEFAULT_PVC_ROOT)
    claim_root = (root / claim).resolve()
    path = (claim_root / unquote(inner)).resolve()
    if path != claim_root and claim_root not in path.parents:
        raise InvalidInputError(f"model URI {uri!r} points outside its volume claim {claim!r}: remove the '..' parts")
    return path


def _existing(uri: str, path: Path, *, hint: str) -> Path:
    if not path.exists():
        raise InvalidInputError(f"model URI {uri!r} resolves to {path}, which does not exist: {hint}")
    return path


def hf_offline_mode() -> bool:
    """Tell whether HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set, read at call time with huggingface_hub's spellings."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _resolve_hf(uri: str, repo_id: str, *, revision: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if repo_id.count("/") != 1:
        raise InvalidInputError(f"model URI {uri!r} is not hf://ORG/REPO: name exactly one Hugging Face repo")
    offline = hf_offline_mode()
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision or None,
            cache_dir=os.environ.get("HF_HUB_CACHE") or None,
            local_files_only=offline,
            ignore_patterns=HF_IGNORE_PATTERNS,
        )
    except LocalEntryNotFoundError as error:
        reason = "HF_HUB_OFFLINE is set" if offline else f"the Hugging Face Hub could not be reached ({error})"
        message = (
            f"model {uri!r} (revision {revision or 'main'!r}) is not in the local Hugging Face cache and {reason}: "
            "the cluster needs internet access to download it, or copy the model to a volume or bucket "
            "and use a pvc:// or s3:// URI"
        )
        if offline:
            raise InvalidInputError(message) from error
        raise TrainerError(message) from error
    except GatedRepoError as error:
        raise InvalidInputError(f"model {uri!r} is gated: accept its terms on the Hub and set HF_TOKEN") from error
    except RevisionNotFoundError as error:
        raise InvalidInputError(f"model {uri!r} has no revision {revision!r}: name a branch, tag or commit") from error
    except RepositoryNotFoundError as error:
        raise InvalidInputError(
            f"model {uri!r} was not found on the Hugging Face Hub: check the repo id, or set HF_TOKEN for a private repo"
        ) from error
    except HFValidationError as error:
        raise InvalidInputError(f"model URI {uri!r} is not a valid Hugging Face repo id: {error}") from error
    return Path(folder)


def _mirror_s3(uri: str, *, bucket: str, prefix: str, endpoint: str, secure: bool) -> Path:
    """Download the objects under ``prefix`` into cache_root()/s3/<bucket>/<prefix> and return that path.

    A file whose size and ETag match the last download is not downloaded again. Local files
    that are no longer in the bucket are deleted, so the folder mirrors the prefix. A prefix
    that names one object, not a folder, downloads that object and returns its file.
    """
    from minio.error import S3Error
    from urllib3.exceptions import HTTPError

    from lora_trainer.storage import s3_client_from_env

    if not bucket:
        raise InvalidInputError(f"model URI {uri!r} names no bucket: write it as s3://BUCKET/PREFIX")
    if ".." in prefix.split("/"):
        raise InvalidInputError(f"model URI {uri!r} contains a '..' part: name the prefix without it")
    try:
        client = s3_client_from_env(endpoint=endpoint, secure=secure)
    except ValueError as error:
        raise InvalidInputError(f"cannot read model {uri!r}: {error}") from error
    bucket_folder = (cache_root() / "s3" / bucket).resolve()
    target = bucket_folder / prefix
    try:
        listing = client.list_objects(bucket, prefix=f"{prefix}/" if prefix else "", recursive=True)
        objects = {item.object_name: item for item in listing if not item.is_dir}
        if not objects and prefix:
            objects = {prefix: client.stat_object(bucket, prefix)}
        _download_changed(client, uri=uri, bucket=bucket, objects=objects, bucket_folder=bucket_folder)
        if target.is_dir():
            _delete_unlisted(target, bucket_folder=bucket_folder, keys=set(objects))
    except S3Error as error:
        if error.code in ("NoSuchKey", "NoSuchObject"):
            raise InvalidInputError(f"model URI {uri!r} matches no objects: check the bucket and the prefix") from error
        if error.code in ("NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise InvalidInputError(
                f"cannot read model {uri!r}: {error.code} ({error.message}); check the bucket name and the "
                "credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from error
        raise TrainerError(f"failed to download model {uri!r} from S3: {error}") from error
    except (OSError, HTTPError) as error:
        raise TrainerError(f"failed to download model {uri!r} from S3 endpoint {endpoint!r}: {error}") from error
    if not objects:
        raise InvalidInputError(f"model URI {uri!r} matches no objects: upload the model or fix the URI")
    return target


def _download_changed(client, *, uri: str, bucket: str, objects: dict, bucket_folder: Path) -> None:  # noqa: ANN001
    """Download each object to bucket_folder/<key> unless its size and ETag match the recorded ones."""
    state_path = bucket_folder / S3_STATE_FILE
    state = _read_state(state_path)
    for key, item in objects.items():
        path = (bucket_folder / key).resolve()
        if bucket_folder not in path.parents:
            raise InvalidInputError(f"object key {key!r} of {uri!r} points outside its bucket folder")
        fingerprint = {"size": item.size, "etag": item.etag}
        if path.is_file() and path.stat().st_size == item.size and state.get(key) == fingerprint:
            continue
        client.fget_object(bucket, key, str(path))
        state[key] = fingerprint
        # Saved after each file, so an interrupted download keeps what it finished.
        _write_state(state_path, state)


def _delete_unlisted(folder: Path, *, bucket_folder: Path, keys: set[str]) -> None:
    state_path = bucket_folder / S3_STATE_FILE
    state = _read_state(state_path)
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(bucket_folder).as_posix()
        if path.is_file() and path != state_path and key not in keys:
            path.unlink()
            state.pop(key, None)
    _write_state(state_path, state)


def _read_state(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        # A damaged record only costs a fresh download.
        return {}


def _write_state(path: Path, state: dict[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.partial")
    temporary.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)
