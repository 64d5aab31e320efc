"""Where a cache lives: a local path (default) or any fsspec URL (memory://, s3://, gs://, ...).

Local paths and file:// URLs use Zarr's LocalStore (atomic writes: a killed writer never leaves a
half-written metadata file); other URLs use FsspecStore, whose object stores write whole objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fsspec
import zarr
from zarr.storage import FsspecStore, LocalStore


def is_local(url: str | Path) -> bool:
    text = str(url)
    return "://" not in text or text.startswith("file://")


def local_path(url: str | Path) -> Path:
    text = str(url)
    if text.startswith("file://"):
        text = text[len("file://"):]
    return Path(text).expanduser()


def make_store(url: str | Path, read_only: bool, storage_options: dict[str, Any] | None = None):
    if is_local(url):
        return LocalStore(local_path(url), read_only=read_only)
    return FsspecStore.from_url(str(url), storage_options=storage_options or {}, read_only=read_only)


def exists(url: str | Path, storage_options: dict[str, Any] | None = None) -> bool:
    """Whether anything (a file or a folder) is at the URL already."""
    if is_local(url):
        return local_path(url).exists()
    fs, path = fsspec.core.url_to_fs(str(url), **(storage_options or {}))
    return fs.exists(path)


def has_zarr_root(url: str | Path, storage_options: dict[str, Any] | None = None) -> bool:
    if is_local(url):
        return (local_path(url) / "zarr.json").is_file()
    fs, path = fsspec.core.url_to_fs(str(url), **(storage_options or {}))
    return fs.exists(f"{path.rstrip('/')}/zarr.json")


def is_empty_dir(url: str | Path) -> bool:
    path = local_path(url)
    return path.is_dir() and not any(path.iterdir())


def size_on_disk(url: str | Path, storage_options: dict[str, Any] | None = None) -> int:
    """Bytes of every file under the store."""
    if is_local(url):
        return sum(p.stat().st_size for p in local_path(url).rglob("*") if p.is_file())
    fs, path = fsspec.core.url_to_fs(str(url), **(storage_options or {}))
    return int(fs.du(path, total=True))


def open_root(url: str | Path, mode: str, storage_options: dict[str, Any] | None = None) -> zarr.Group:
    """mode "r": read only; "r+": read/write an existing store; "w": delete and create."""
    store = make_store(url, read_only=(mode == "r"), storage_options=storage_options)
    return zarr.open_group(store=store, mode=mode, zarr_format=3)


def remove_node(parent: zarr.Group, name: str) -> None:
    """Delete everything stored under parent/name: a group, an array, or the leftovers of a writer
    killed while creating or deleting one (files without a zarr.json, which Zarr itself ignores)."""
    from zarr.core.sync import sync

    prefix = f"{parent.path}/{name}" if parent.path else name
    sync(parent.store.delete_dir(prefix))
