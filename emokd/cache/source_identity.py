"""The identity of a source file, recorded with what was extracted from it, and the test for a change.

A video group's `source` attribute (and a failure record's) holds, for a local file, its absolute
path, size, mtime (ns) and the sha256 of its first and last MiB; for an object-store URL, the URL
with the object's size and ETag (or the backend's version field). A local source has changed when
its size differs, or when its mtime differs and so does that hash (a copy that kept the bytes but
not the mtime is the same source); hashing two MiB costs milliseconds and only happens when the
mtime moved. A URL source has changed when its size or ETag differs. A source that is gone counts
as changed (`verify --sources` lists it; extraction cannot redo it and says so).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from emokd.cache import location
from emokd.errors import DataError

HASH_SPAN = 1 << 20
# Object metadata fields that change when an object is replaced, by backend (s3fs, gcsfs, adlfs).
VERSION_FIELDS = ("ETag", "etag", "generation", "md5Hash", "content_settings", "mtime")


def head_tail_sha256(path: str | Path, size: int | None = None) -> str:
    """sha256 of the first and the last HASH_SPAN bytes of the file (the whole file when shorter)."""
    size = os.stat(path).st_size if size is None else size
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(HASH_SPAN))
        if size > HASH_SPAN:
            f.seek(max(HASH_SPAN, size - HASH_SPAN))
            digest.update(f.read(HASH_SPAN))
    return digest.hexdigest()


def source_identity(source, storage_options: dict | None = None) -> dict:
    """What identifies the source now: {"path", "size", "mtime_ns", "head_tail_sha256"} for a local
    file, {"url", "size", "etag"} for an object; {} for no source."""
    if source is None:
        return {}
    if location.is_local(source):
        stat = os.stat(source)
        return {"path": str(Path(source).resolve()), "size": int(stat.st_size), "mtime_ns": int(stat.st_mtime_ns),
                "head_tail_sha256": head_tail_sha256(source, stat.st_size)}
    fs, path = location.filesystem(str(source), storage_options)
    try:
        with location.store_errors(str(source)):
            info = fs.info(path)
    except FileNotFoundError as exc:
        raise DataError(f"{source}: source video not found on the object store") from exc
    if info.get("type") == "directory":
        raise DataError(f"{source}: a folder, not a video file")
    version = next((str(info[k]) for k in VERSION_FIELDS if info.get(k) is not None), None)
    return {"url": str(source), "size": int(info.get("size") or 0), "etag": version}


def source_change(recorded: dict | None, source, storage_options: dict | None = None) -> str | None:
    """Why `source` is not the source that `recorded` describes, or None when it is (or when nothing
    was recorded to compare with)."""
    if not recorded or source is None or "size" not in recorded:
        return None
    if "url" in recorded:
        try:
            now = source_identity(source, storage_options)
        except DataError:
            return f"{source} is gone"
        if (now["size"], now["etag"]) != (recorded["size"], recorded.get("etag")):
            return f"{source} was replaced (size/ETag {recorded['size']}/{recorded.get('etag')} -> " \
                   f"{now['size']}/{now['etag']})"
        return None
    try:
        stat = os.stat(source)
    except FileNotFoundError:
        return f"{source} is gone"
    if int(stat.st_size) != int(recorded["size"]):
        return f"{source} changed size ({recorded['size']} -> {stat.st_size} bytes)"
    if int(stat.st_mtime_ns) == int(recorded.get("mtime_ns", -1)):
        return None
    if "head_tail_sha256" not in recorded:
        return f"{source} was modified (its mtime changed; no content hash recorded to compare)"
    if head_tail_sha256(source, stat.st_size) != recorded["head_tail_sha256"]:
        return f"{source} was rewritten (its content differs from the extracted one)"
    return None
