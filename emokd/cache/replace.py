"""What may stand where a cache is created, and `--overwrite` that never leaves a broken cache.

`what_is_at(url)` says "absent", "empty" or "cache" (an emokd store, finished or not), and raises
CacheError for anything else: emokd deletes only what it made. A store is emokd's when its root
zarr.json carries the cache tag (or the mark of an interrupted creation or replacement) and its
top level holds only what emokd writes there.

`replace(url, build)` (local stores): `build(staged)` writes the new, empty store beside the old one
(`<name>.emokd-new-<token>`), the two are swapped in one atomic rename (renameat2 RENAME_EXCHANGE;
two renames where the system lacks it), and the old store, now at the staged name, is deleted
last. At every moment the path holds the old cache or the new one. `recover(url)` finishes or
cleans what a killed replacement left beside the path. Object stores have no rename: the old
store is marked as being replaced (its root attributes lose the fingerprint, so it no longer
opens as a cache), emptied, root object last, then written anew.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from emokd.cache import location
from emokd.cache.failures import GROUP as FAILURES
from emokd.cache.shard import SHARDS
from emokd.cache.soft import GROUP as SOFT
from emokd.errors import CacheError

log = logging.getLogger(__name__)

FORMAT_TAG = "emokd feature cache"
REPLACING = "emokd_replacing"
SUBGROUPS = (SHARDS, SOFT, FAILURES)
VERSION1_GROUPS = ("videos", "labels")        # a schema version 1 cache's (still emokd's own)
# what emokd itself puts at the top of a local store folder besides the Zarr groups (version 1
# kept its log and config inside the store; version 2 keeps them beside it, cache/sidecar.py)
OWN_FILES = ("zarr.json", "extract.log", "extract_config.yaml")
# zarr's LocalStore writes each file as `<stem>.<uuid4 hex>.partial` and renames it into place: a
# kill in between leaves that file (the root's is `zarr.<hex>.partial`). It is zarr's, on our behalf.
_ZARR_PARTIAL = re.compile(r"^zarr\.[0-9a-f]{32}\.partial$")
_STAGED = re.compile(r"^(?P<name>.+)\.emokd-(?:new|old)-[0-9a-f]{32}$")


def _root_document(url, storage_options) -> dict | None:
    """The root zarr.json of the store at `url` as a dict, None when there is none."""
    try:
        if location.is_local(url):
            text = (location.local_path(url) / "zarr.json").read_text()
        else:
            fs, path = location.filesystem(url, storage_options)
            text = fs.cat_file(f"{path.rstrip('/')}/zarr.json").decode()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}


def _top_level(url, storage_options) -> list[str]:
    if location.is_local(url):
        return sorted(p.name for p in location.local_path(url).iterdir())
    fs, path = location.filesystem(url, storage_options)
    return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False))


def what_is_at(url: str | Path, storage_options: dict | None = None) -> str:
    """"absent", "empty" (an empty folder) or "cache" (emokd's store); CacheError for anything else."""
    if not location.exists(url, storage_options):
        return "absent"
    if location.is_local(url):
        path = location.local_path(url)
        if not path.is_dir():
            raise CacheError(f"{url}: a file, not a cache folder; choose another --cache path")
        if not any(path.iterdir()):
            return "empty"
    document = _root_document(url, storage_options)
    if document is None:
        raise CacheError(f"{url}: exists and is not an emokd cache (no zarr.json); choose a new path "
                         "(emokd deletes only caches it made)")
    attrs = document.get("attributes") or {}
    ours = attrs.get("emokd_cache") == FORMAT_TAG or REPLACING in attrs
    foreign = [name for name in _top_level(url, storage_options)
               if name not in SUBGROUPS + VERSION1_GROUPS + OWN_FILES and not _ZARR_PARTIAL.match(name)]
    if not ours and (attrs or foreign or not is_empty_skeleton(location.open_root(url, "r", storage_options))):
        raise CacheError(f"{url}: a Zarr store, but not an emokd feature cache; choose a new path "
                         "(emokd deletes only caches it made)")
    if foreign:
        raise CacheError(f"{url}: besides the cache it holds {len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} "
                         f"emokd did not make ({', '.join(foreign[:3])}); move them out, or choose a new path")
    return "cache"


def is_empty_skeleton(root) -> bool:
    """Only our (empty) top-level groups: what `create` writes before the root attributes. An
    untagged store is emokd's only in this form: one whose groups hold anything is someone else's."""
    members = dict(root.members())
    return set(members) <= set(SUBGROUPS) and not any(list(group.keys()) for group in members.values())


def is_being_replaced(attrs: dict) -> bool:
    return REPLACING in attrs


# ---- local: build beside, swap, delete the old last ----------------------------------------------
def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic rename; False where the system cannot (then nothing happened)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a))


def _siblings(path: Path) -> list[Path]:
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir()
                  if (m := _STAGED.match(p.name)) and m.group("name") == path.name)


def recover(url: str | Path) -> None:
    """Finish or clean up a replacement killed midway (local stores; nothing else to do elsewhere)."""
    if not location.is_local(url):
        return
    path = location.local_path(url).absolute()
    siblings = _siblings(path)
    for staged in siblings:
        old_twin = staged.with_name(staged.name.replace(".emokd-new-", ".emokd-old-"))
        if ".emokd-new-" in staged.name and not path.exists() and old_twin in siblings:
            os.rename(staged, path)  # killed between the two renames: the new store goes in place
            log.warning("%s: finished a replacement interrupted between its renames", path)
        else:
            log.warning("%s: deleting %s, left by an interrupted --overwrite", path, staged.name)
            shutil.rmtree(staged, ignore_errors=True)


def replace(url: str | Path, build: Callable[[str], None], storage_options: dict | None = None) -> None:
    """Replace emokd's store at `url` by the one `build(target_url)` writes (see the module docstring)."""
    if not location.is_local(url):
        _replace_remote(url, build, storage_options)
        return
    path = location.local_path(url).absolute()
    token = uuid.uuid4().hex
    staged = path.with_name(f"{path.name}.emokd-new-{token}")
    build(str(staged))
    if not _exchange(path, staged):
        old = path.with_name(f"{path.name}.emokd-old-{token}")
        os.rename(path, old)
        os.rename(staged, path)
        staged = old
    log.info("%s: new store in place; deleting the old one", path)
    (staged / "zarr.json").unlink(missing_ok=True)   # first: a half-deleted old store never opens
    shutil.rmtree(staged)


def _replace_remote(url, build, storage_options) -> None:
    root = location.open_root(url, "r+", storage_options)
    root.attrs.put({REPLACING: uuid.uuid4().hex})  # no fingerprint: no longer opens as a cache
    fs, path = location.filesystem(url, storage_options)  # listings never cached
    path = path.rstrip("/")
    files = [f for f in fs.find(path) if f.rstrip("/") != f"{path}/zarr.json"]
    if files:
        fs.rm(files)
    build(str(url))  # mode "w": removes the root object last, then writes the new store
