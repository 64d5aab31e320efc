"""Video ids <-> Zarr node names.

Ids may contain "/" (namespaced "<dataset>/<item>") or any other character, while a Zarr node name
may not contain "/", may not start with "__" (reserved) and should stay safe on every fsspec
backend (local disks, S3, GCS, HTTP). Every character outside [A-Za-z0-9._-] becomes "~XX" per
UTF-8 byte ("~" included, so decoding is unambiguous), and a leading "." or "_" is escaped too,
as is the "." of an id that is exactly "zarr.json" (the name of a node's own metadata document:
such a node would stand for, and its deletion delete, its parent's metadata).
"AfW/118-30-640x480_left" -> "AfW~2F118-30-640x480_left".
"""

from __future__ import annotations

import re

from emokd.errors import CacheError

_SAFE = re.compile(r"[A-Za-z0-9._-]")
METADATA = "zarr.json"
_ESCAPED = re.compile(r"(?:~[0-9A-F]{2})+")


def encode_key(item_id: str) -> str:
    """The Zarr node name that stores `item_id` (a video id or a teacher run name)."""
    if not isinstance(item_id, str) or not item_id:
        raise CacheError(f"cache ids must be non-empty strings, got {item_id!r}")
    out = []
    for position, char in enumerate(item_id):
        if _SAFE.fullmatch(char) and not (position == 0 and char in "._"):
            out.append(char)
        else:
            out.extend(f"~{byte:02X}" for byte in char.encode("utf-8"))
    key = "".join(out)
    return "zarr~2Ejson" if key == METADATA else key


def decode_key(key: str) -> str:
    """Inverse of `encode_key`."""
    def unescape(match: re.Match) -> str:
        raw = bytes(int(match.group(0)[i + 1:i + 3], 16) for i in range(0, len(match.group(0)), 3))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CacheError(f"cache node name {key!r} is not a valid escaped id: {exc}") from exc
    return _ESCAPED.sub(unescape, key)


def check_node_name(name: str, what: str = "node name") -> str:
    """`name` if it is a safe Zarr node name (what `encode_key` produces, or a shard key built from
    such names with "~~"), else CacheError."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9~-][A-Za-z0-9._~-]*", name):
        raise CacheError(f"{what} {name!r}: use only A-Z a-z 0-9 . _ - ~, not starting with . or _")
    if name == METADATA:
        raise CacheError(f"{what} {name!r}: the name of a node's own metadata; choose another")
    return name
