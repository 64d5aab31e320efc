"""Feature sets: the embeddings of one encoder for every cached frame, each with its own fingerprint.

A cache can hold several face and audio sets for the same frames (docs/cache_format.md#feature-sets).
A set has a name (default `<encoder name>-<layer>`, e.g. `fer_pyemotion-embedding`,
`soundnet8-conv8`), a kind (`face` | `audio`), a width, and a fingerprint: the sha256 of
{schema version, kind, the encoder record (name, kind, output dim, layer, input spec, weights
sha256), the extraction settings of its kind (face: face source, detector, crop size; audio: sample
rate, window length, audio mode)}. Adding a set computes only that set; a set whose name exists
with another fingerprint is refused, naming what differs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from emokd.constants import CACHE_SCHEMA_VERSION
from emokd.errors import CacheError
from emokd.cache.fingerprint import canonical, compute_fingerprint, differences, jsonable

KINDS = ("face", "audio")
OK_SUFFIX = ".ok"
RESERVED = ("pts", "labels", "soft")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_NOT_HASHED = ("array", "set")  # names, not values


def default_set_name(record: dict) -> str:
    """`<encoder name>-<layer>` with every character outside [A-Za-z0-9_-] replaced by `_`."""
    name = str(record.get("set") or record.get("name") or "")
    if not record.get("set") and record.get("layer"):
        name = f"{name}-{record['layer']}"
    name = re.sub(r"[^A-Za-z0-9_-]", "_", name).lstrip("_-")
    return name[:100]


def check_set_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in RESERVED:
        raise CacheError(f"feature set name {name!r}: use letters, digits, '_' and '-' (at most 100, "
                         f"starting with a letter or digit), not one of {list(RESERVED)}")
    return name


@dataclass(frozen=True)
class FeatureSet:
    name: str
    kind: str
    dim: int
    encoder: dict                 # the encoder record, canonical
    settings: dict                # the extraction settings of its kind, canonical
    schema_version: int = CACHE_SCHEMA_VERSION
    config: dict = field(default_factory=dict, compare=False)   # the run that added it; not hashed
    added: str | None = field(default=None, compare=False)

    @property
    def ok_array(self) -> str:
        """The per-frame mask array of the set: a face / an audio window existed for the frame."""
        return self.name + OK_SUFFIX

    def inputs(self) -> dict:
        """The exact document that is hashed into the set's fingerprint."""
        return {"schema_version": int(self.schema_version), "kind": self.kind, "encoder": self.encoder,
                "settings": self.settings}

    @cached_property
    def fingerprint(self) -> str:
        return compute_fingerprint(self.inputs())

    def record(self) -> dict:
        """The encoder record as training and tools read it, with the set's name as `array`/`set`."""
        return {**self.encoder, "array": self.name, "set": self.name}

    def to_attrs(self) -> dict:
        return {"kind": self.kind, "dim": self.dim, "encoder": self.encoder, "settings": self.settings,
                "schema_version": self.schema_version, "fingerprint": self.fingerprint,
                "config": self.config, "added": self.added}

    @classmethod
    def from_attrs(cls, name: str, attrs: dict) -> FeatureSet:
        return cls(name=name, kind=attrs["kind"], dim=int(attrs["dim"]), encoder=attrs["encoder"],
                   settings=attrs.get("settings", {}), schema_version=int(attrs.get("schema_version", 0)),
                   config=attrs.get("config") or {}, added=attrs.get("added"))


def make_set(record: dict, settings: dict, name: str | None = None, config: dict | None = None,
             added: str | None = None) -> FeatureSet:
    """The FeatureSet an encoder record fills, with the settings of its kind."""
    for key in ("name", "kind", "output_dim"):
        if key not in record:
            raise CacheError(f"encoder record {record!r} lacks {key!r}")
    if record["kind"] not in KINDS:
        raise CacheError(f"encoder {record['name']!r}: kind {record['kind']!r} is not one of {list(KINDS)}")
    name = check_set_name(default_set_name(record) if name is None else name)
    encoder = canonical({k: v for k, v in record.items() if k not in _NOT_HASHED}, f"{name}.encoder")
    return FeatureSet(name=name, kind=record["kind"], dim=int(record["output_dim"]), encoder=encoder,
                      settings=canonical(settings, f"{name}.settings"), config=jsonable(config or {}),
                      added=added)


def sets_from_records(settings: dict, encoders: list[dict], names: dict[str, str] | None = None,
                      config: dict | None = None) -> list[FeatureSet]:
    """One set per encoder record, all with `settings`; `names` maps a kind to an explicit set name."""
    sets = [make_set(r, settings, (names or {}).get(r.get("kind")), config) for r in encoders]
    seen: dict[str, FeatureSet] = {}
    for fs in sets:
        if fs.name in seen:
            raise CacheError(f"two encoders would fill the same feature set {fs.name!r}; give one another "
                             "set name")
        seen[fs.name] = fs
    return sets


def set_differences(stored: FeatureSet, requested: FeatureSet) -> list[str]:
    """One line per differing input, prefixed with the set's name, e.g.
    "fer_pyemotion-embedding: encoder.weights_sha256: cache has "3f..", requested "9b..""."""
    return [f"{requested.name}: {line}" for line in differences(stored.inputs(), requested.inputs())]


def sets_fingerprint(sets: list[FeatureSet]) -> str:
    """sha256 over the names and fingerprints of `sets` (any order): what a run trained on them records."""
    import hashlib

    text = "\n".join(f"{fs.name}={fs.fingerprint}" for fs in sorted(sets, key=lambda s: s.name))
    return hashlib.sha256(text.encode()).hexdigest()
