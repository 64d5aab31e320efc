"""The cache fingerprint: a hash of every setting that changes feature values.

What goes in: the code's cache schema version, the extraction settings the caller passes (crop
size, sample rate, window length, audio mode, ...) and each encoder's record (name, kind, output
dim, layer, input spec, weights sha256). What stays out: anything that changes only speed or
bookkeeping (workers, batch size, device, paths), which the caller keeps in `config` instead.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from emokd.constants import CACHE_SCHEMA_VERSION
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


def array_name(record: dict) -> str:
    """The per-video array an encoder fills: its record's "array" key, else its kind ("face", "audio")."""
    name = record.get("array") or record.get("kind")
    if not name:
        raise CacheError(f"encoder record {record!r} has neither 'kind' nor 'array'")
    return str(name)


def encoders_by_array(encoders: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for record in encoders:
        for key in ("name", "output_dim"):
            if key not in record:
                raise CacheError(f"encoder record {record!r} lacks {key!r}")
        name = array_name(record)
        if name in out:
            raise CacheError(f"two encoders write the same cache array {name!r}: "
                             f"{out[name]['name']} and {record['name']}; give one an 'array' name")
        out[name] = canonical(record, f"encoders.{name}")
    return out


def fingerprint_inputs(settings: dict, encoders: list[dict],
                       schema_version: int = CACHE_SCHEMA_VERSION) -> dict:
    """The exact document that is hashed (stored in the cache's root attrs as `settings` etc.)."""
    return {"schema_version": int(schema_version), "settings": canonical(settings),
            "encoders": encoders_by_array(encoders)}


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
