"""Where a cache lives: a local path (default) or any fsspec URL (memory://, s3://, gs://, ...).

Local paths and file:// URLs use Zarr's LocalStore (atomic writes: a killed writer never leaves a
half-written metadata file); other URLs use FsspecStore, whose object stores write whole objects.

Storage options are the keyword arguments of the fsspec filesystem (for s3fs: endpoint_url, key,
secret, anon, client_kwargs, ...), given as `--storage-options KEY=VALUE` or in a config file;
with none, s3fs reads the standard AWS environment and files (AWS_ACCESS_KEY_ID, AWS_PROFILE,
AWS_ENDPOINT_URL, ~/.aws/config) and fsspec its own (FSSPEC_S3_*). On object stores the listing
cache of the filesystem is turned off: other processes (the workers) add groups all the time, and a
cached listing would hide them (docs/scaling.md#object-stores). Saved configs keep the options
without their credentials (`emokd.config.without_secrets`).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

import fsspec
import zarr
from zarr.storage import FsspecStore, LocalStore

from emokd.errors import CacheError, ConfigError

# Filesystems whose instances cache directory listings across calls (fsspec's DirCache).
LISTING_CACHE_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "abfs", "az", "adl")


def is_local(url: str | Path) -> bool:
    text = str(url)
    return "://" not in text or text.startswith("file://")


def local_path(url: str | Path) -> Path:
    text = str(url)
    if text.startswith("file://"):
        text = text[len("file://"):]
    return Path(text).expanduser()


def protocol(url: str | Path) -> str:
    text = str(url)
    return "file" if is_local(text) else text.split("://", 1)[0].lower()


def _typed(text: str) -> Any:
    """A --storage-options value: JSON where it parses (true, 3, 1.5, null, {...}), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_storage_options(pairs: Iterable[str] | str | None) -> dict[str, Any]:
    """KEY=VALUE texts (or one comma-separated text) -> fsspec options; a dotted KEY nests
    (client_kwargs.region_name=eu-west-1, config_kwargs.s3.addressing_style=path)."""
    if pairs is None:
        return {}
    if isinstance(pairs, str):
        pairs = [p for p in pairs.split(",") if p.strip()]
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"storage option {pair!r}: expected KEY=VALUE, e.g. endpoint_url=http://127.0.0.1:9000")
        *parents, last = key.split(".")
        node = options
        for name in parents:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise ConfigError(f"storage option {pair!r}: {name} is given both as a value and as a table")
        node[last] = _typed(value.strip())
    return options


def resolve_options(url: str | Path, storage_options: dict[str, Any] | None = None,
                    store: bool = False) -> dict[str, Any]:
    """The filesystem options used for `url`: emokd's defaults for its protocol, then the user's.
    For a cache store on S3 also `max_concurrency=1`: s3fs otherwise sends a HEAD before every read
    to decide on a ranged parallel download, which a chunk (<= 4 MiB, far below its 50 MiB block)
    never gets; measured, it doubled the requests of a training load (docs/benchmarks.md)."""
    defaults = {"use_listings_cache": False} if protocol(url) in LISTING_CACHE_PROTOCOLS else {}
    if store and protocol(url) in ("s3", "s3a"):
        defaults["max_concurrency"] = 1
    return {**defaults, **(storage_options or {})}


def filesystem(url: str | Path, storage_options: dict[str, Any] | None = None):
    """(fsspec filesystem, path inside it) of a non-local URL."""
    with store_errors(url):
        return fsspec.core.url_to_fs(str(url), **resolve_options(url, storage_options))


def _hint(url: str, exc: BaseException) -> str | None:
    """What to do about an error from an object store, or None when it is not one we know."""
    name = type(exc).__name__
    text = str(exc)
    if isinstance(exc, ImportError) and protocol(url) in ("s3", "s3a"):
        return "the s3 backend is not installed: pip install 'emokd[s3]' (s3fs)"
    if isinstance(exc, ImportError) or (isinstance(exc, ValueError) and "Protocol not known" in text):
        return f"no fsspec backend for {protocol(url)}:// is installed ({text})"
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return ("no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or pass "
                "--storage-options key=... secret=... (or anon=true for a public bucket)")
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError",
                "ServerDisconnectedError") or "Could not connect" in text:
        return (f"cannot reach the object store ({text}); check --storage-options endpoint_url=... "
                "or AWS_ENDPOINT_URL")
    if isinstance(exc, PermissionError):
        return f"access denied ({text}); check the credentials and the bucket's policy"
    if name == "NoSuchBucket" or (isinstance(exc, FileNotFoundError) and "bucket" in text.lower()):
        return f"no such bucket ({text}); create it first or fix the URL"
    return None


@contextlib.contextmanager
def store_errors(url: str | Path):
    """Turn the errors of an unreachable or misconfigured object store into one-line CacheErrors."""
    try:
        yield
    except CacheError:
        raise
    except Exception as exc:
        hint = None if is_local(url) else _hint(str(url), exc)
        if hint is None:
            raise
        raise CacheError(f"{url}: {hint}") from exc


def absolute_url(url: str | Path) -> str:
    """A local path made absolute (workers, runs and later commands may start elsewhere); any
    other URL unchanged."""
    return str(local_path(url).resolve()) if is_local(url) else str(url)


def make_store(url: str | Path, read_only: bool, storage_options: dict[str, Any] | None = None):
    if is_local(url):
        return LocalStore(local_path(url), read_only=read_only)
    with store_errors(url):
        return FsspecStore.from_url(str(url), storage_options=resolve_options(url, storage_options, store=True),
                                    read_only=read_only)


def exists(url: str | Path, storage_options: dict[str, Any] | None = None) -> bool:
    """Whether anything (a file or a folder) is at the URL already."""
    if is_local(url):
        return local_path(url).exists()
    fs, path = filesystem(url, storage_options)
    with store_errors(url):
        return fs.exists(path)


def has_zarr_root(url: str | Path, storage_options: dict[str, Any] | None = None) -> bool:
    if is_local(url):
        return (local_path(url) / "zarr.json").is_file()
    fs, path = filesystem(url, storage_options)
    with store_errors(url):
        return fs.exists(f"{path.rstrip('/')}/zarr.json")


def is_empty_dir(url: str | Path) -> bool:
    path = local_path(url)
    return path.is_dir() and not any(path.iterdir())


def size_on_disk(url: str | Path, storage_options: dict[str, Any] | None = None) -> int:
    """Bytes of every file under the store."""
    if is_local(url):
        return sum(p.stat().st_size for p in local_path(url).rglob("*") if p.is_file())
    fs, path = filesystem(url, storage_options)
    with store_errors(url):
        return int(fs.du(path, total=True))


def check_writable(url: str | Path, subfolders: tuple[str, ...] = ()) -> None:
    """CacheError when a local store (or one of its existing `subfolders`) cannot be written, found
    before any work that would end in a write. Object stores are checked by their first write."""
    if not is_local(url):
        return
    from emokd.errors import CacheError

    root = local_path(url)
    for path in (root, *(root / name for name in subfolders)):
        if path.is_dir() and not os.access(path, os.W_OK):
            raise CacheError(f"{url}: read-only (cannot write {path}); make it writable, or use a copy of "
                             "the cache in a writable place")


def open_root(url: str | Path, mode: str, storage_options: dict[str, Any] | None = None) -> zarr.Group:
    """mode "r": read only; "r+": read/write an existing store; "w": delete and create."""
    store = make_store(url, read_only=(mode == "r"), storage_options=storage_options)
    with store_errors(url):
        return zarr.open_group(store=store, mode=mode, zarr_format=3)


def remove_node(parent: zarr.Group, name: str) -> None:
    """Delete everything stored under parent/name: a group, an array, or the leftovers of a writer
    killed while creating or deleting one (files without a zarr.json, which Zarr itself ignores).

    The node's own zarr.json goes first: a delete killed half-way (rmtree and object stores remove
    files in no fixed order) then leaves such ignored leftovers, never a node whose metadata still
    says "complete" over arrays or chunks that are gone (missing chunks would read as zeros)."""
    from zarr.core.sync import sync

    from emokd.cache.keys import check_node_name

    check_node_name(name)   # never "zarr.json" (the parent's metadata) or a path
    prefix = f"{parent.path}/{name}" if parent.path else name
    sync(parent.store.delete(f"{prefix}/zarr.json"))
    sync(parent.store.delete_dir(prefix))
