"""The failure log: which video failed, with what error, when.

One small group per failed video under `failures/` (its attrs hold the record), so that parallel
tasks never write the same file. The log lives in the cache, so it survives re-runs (which skip a
failed video unless its source changed or --retry-failed is given); a video's entry is removed when
the video is later committed.
"""

from __future__ import annotations

import zarr

from emokd.cache.keys import decode_key, encode_key
from emokd.cache.location import remove_node
from emokd.cache.writer import now_utc

GROUP = "failures"


def record_failure(root: zarr.Group, video_id: str, message: str, source: dict | None = None) -> None:
    failures = root.require_group(GROUP)
    key = encode_key(video_id)
    attempts = 1
    if key in failures:
        attempts = int(failures[key].attrs.get("attempts", 0)) + 1
    remove_node(failures, key)
    failures.create_group(key, attributes={"video_id": video_id, "message": str(message),
                                           "time": now_utc(), "attempts": attempts, "source": source or {}})


def clear_failures(root: zarr.Group, video_ids) -> None:
    """Remove the entries of `video_ids` (with what a killed write of one left behind), listing the
    log once: a commit clears its items' entries, and most have none, so one listing replaces a
    delete per item (four store operations each, on every commit)."""
    if GROUP not in root:
        return
    failures = root[GROUP]
    for key in sorted({encode_key(vid) for vid in video_ids} & _listed(failures)):
        remove_node(failures, key)


def _listed(group: zarr.Group) -> set[str]:
    """The names under `group` in the store, a node's or not (leftovers without a zarr.json too)."""
    from zarr.core.sync import sync

    async def names() -> set[str]:
        return {name async for name in group.store.list_dir(group.path)}
    return sync(names())


def failure_log(root: zarr.Group) -> dict[str, dict]:
    """video id -> {"message", "time", "attempts", "source"}: "source" is the failed file's identity
    (emokd/cache/source_identity.py), {} when none was recorded."""
    if GROUP not in root:
        return {}
    out = {}
    for key, group in root[GROUP].groups():
        attrs = dict(group.attrs)
        out[attrs.get("video_id", decode_key(key))] = {**{k: attrs.get(k) for k in ("message", "time", "attempts")},
                                                      "source": attrs.get("source") or {}}
    return dict(sorted(out.items()))
