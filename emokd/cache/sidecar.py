"""Where emokd keeps what is not Zarr: run logs and configs, beside the store, never inside it.

Plain `zarr`/`xarray` listings warn about (or trip on) any foreign file inside a store, so a local
cache `path/cache.zarr` has a sibling folder `path/cache.zarr.emokd/` holding one
`<command>-<UTC time>.log` and `.yaml` (the resolved config) per run. A cache on an object store
has no sidecar: its runs log into the working directory. Every config is also stored inside the
cache as Zarr attributes (the root's `config`, each feature set's `config`).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from emokd.cache.location import is_local, local_path

SUFFIX = ".emokd"


def sidecar_dir(url) -> Path | None:
    """`<cache>.emokd/` beside a local cache; None for a cache on an object store."""
    if not is_local(url):
        return None
    path = local_path(url)
    return path.with_name(path.name + SUFFIX)


def run_files(url, command: str) -> tuple[Path, Path]:
    """(log file, config file) for one run of `command` on the cache at `url` (not created here)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = sidecar_dir(url)
    if folder is None:
        return Path(f"emokd-{command}-{stamp}.log"), Path(f"emokd-{command}-{stamp}.yaml")
    return folder / f"{command}-{stamp}.log", folder / f"{command}-{stamp}.yaml"
