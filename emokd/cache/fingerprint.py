"""Fingerprints: a hash of every setting that changes feature values, and what differs between two.

Each feature set has its own fingerprint (emokd/cache/sets.py says what goes in). What stays out:
anything that changes only speed or bookkeeping (workers, batch size, device, paths), which the
caller keeps in `config` instead.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from emokd.errors import CacheError

_MISSING = "<not set>"


def canonical(value: Any, where: str = "settings") -> Any:
    """JSON-able form with tuples as lists, integral floats as ints (10.0 == 10), sorted keys."""
    if isinstance(value, dict):
        return {str(k): canonical(v, f"{where}.{k}") for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CacheError(f"cache setting {where} must be finite, got {value}")
        return int(value) if value.is_integer() else value
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return canonical(value.item(), where)
    if hasattr(value, "__fspath__"):
        return str(value)
    raise CacheError(f"cache setting {where} has a value that cannot be stored: {value!r} ({type(value).__name__})")


def jsonable(value: Any) -> Any:
    """`value` as plain JSON types (paths and other objects as their text): what attributes can hold."""
    return json.loads(json.dumps(value, default=str))


def compute_fingerprint(inputs: dict) -> str:
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def differences(stored: dict, requested: dict) -> list[str]:
    """One line per differing setting, e.g. "settings.window_s: cache has 10, requested 5"."""
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    _flatten(stored, "", old)
    _flatten(requested, "", new)
    lines = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, _MISSING), new.get(key, _MISSING)
        if before != after:
            lines.append(f"{key}: cache has {json.dumps(before) if before is not _MISSING else before}, "
                         f"requested {json.dumps(after) if after is not _MISSING else after}")
    return lines
