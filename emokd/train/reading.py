"""Reading the chosen items of a cache for training, shard by shard (no torch here).

`select` reads only metadata, labels and face masks (about 25 bytes a frame) and decides which
rows of which shard are loaded: the complete items with some task in the requested splits that
have both chosen feature sets. Labels written before per-task splits are refused (relabel them).
`read_features` then fills preallocated frame-major arrays with one read per shard array, so
loading 400 k stills is a few hundred reads, not a million.

Each phase reads up to READ_THREADS shards at once, in order (`in_order`): on an object store every
read is a round trip of 10-100 ms, and one after the other they made the load latency-bound
(docs/benchmarks.md, "Object store"). On local disk the threads change little.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from emokd.constants import N_AU, uniform_splits
from emokd.errors import CacheError, ConfigError, DataError

DEFAULT_MEMORY_FRACTION = 0.5   # of the machine's RAM, when no max_memory is given
READ_THREADS = 8                # shards read at once (and at most this many held beyond the one in use)


def in_order(fn: Callable, items: Iterable, threads: int | None = None) -> Iterator:
    """fn(item) for each item, in order, with at most `threads` (default READ_THREADS) calls in
    flight: results are produced ahead only that far, so memory stays bounded."""
    threads = READ_THREADS if threads is None else threads
    if threads <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="emokd-read") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclass
class ShardRows:
    key: str
    rows: np.ndarray        # rows of the shard that are loaded, in order
    start: int              # global id of the first of them


@dataclass
class Selection:
    """Everything about the chosen items except their features."""

    ids: list[str]
    lens: np.ndarray
    splits: list[dict[str, str]]      # per item: task (VA, EXPR, AU, MTL) -> split
    datasets: list[str]
    face_ok: np.ndarray
    va: np.ndarray
    expr: np.ndarray
    au: np.ndarray
    mtl: np.ndarray
    shards: list[ShardRows]
    face_set: str
    audio_set: str
    skipped: dict[str, int] = field(default_factory=dict)   # why items were left out -> count

    @property
    def n_frames(self) -> int:
        return int(self.lens.sum())

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lens)[:-1]]).astype(np.int64)


def select(cache, splits: Sequence[str] | None = None, item_ids: Sequence[str] | None = None,
           face_set: str | None = None, audio_set: str | None = None) -> Selection:
    """The rows to load: see the module docstring. DataError when nothing is left."""
    face, audio = cache.choose_set("face", face_set), cache.choose_set("audio", audio_set)
    wanted_ids = None if item_ids is None else set(item_ids)
    keys = cache.shard_keys()          # reads the index afresh; `cache.index` below is that reading
    index = cache.index
    if wanted_ids is not None:
        unknown = sorted(wanted_ids - set(index.locations))
        if unknown:
            raise CacheError(f"cache {cache.url}: no complete item(s) {unknown[:5]}")
    out = {k: [] for k in ("ids", "lens", "splits", "datasets", "ok", "va", "expr", "au", "mtl")}
    shards, skipped, start = [], {}, 0
    wanted = []                                  # (key, state, the wanted items of it): from the index alone
    for key in keys:
        mine = [item_id for item_id in index.items_of(key) if wanted_ids is None or item_id in wanted_ids]
        if mine:
            wanted.append((key, cache.shard_state(key), mine))
    kept = []                                    # (key, table, labels, [(item index, per-task splits)])
    for (key, state, mine), labels in zip(wanted, in_order(cache.read_shard_labels, [k for k, *_ in wanted])):
        keep = []
        for item_id in mine:
            i = index.location(item_id).index
            per_task = labels.splits(i) if labels is not None else uniform_splits("unlabelled")
            if per_task is None:
                raise CacheError(f"cache {cache.url}: the labels of {item_id!r} were written before per-task "
                                 "splits; run `emokd cache relabel DATASET CACHE` to rewrite them from the dataset")
            if wanted_ids is None and splits is not None and not set(splits) & set(per_task.values()):
                continue
            if not (state.has_set(face.name, item_id) and state.has_set(audio.name, item_id)):
                skipped["without a chosen feature set"] = skipped.get("without a chosen feature set", 0) + 1
                continue
            keep.append((i, per_task))
        if keep:
            kept.append((key, state.table, labels, keep))
    masks = in_order(lambda key: cache.read_shard(key, [face.ok_array])[face.ok_array], [k for k, *_ in kept])
    for (key, table, labels, keep), ok in zip(kept, masks):
        rows = np.concatenate([np.arange(table.first[i], table.first[i] + table.length[i]) for i, _ in keep])
        for i, per_task in keep:
            out["ids"].append(table.ids[i])
            out["lens"].append(int(table.length[i]))
            out["splits"].append(per_task)
            out["datasets"].append(labels.columns["dataset"][i] if labels is not None else "unknown")
        out["ok"].append(ok[rows])
        if labels is not None:
            for name in ("va", "expr", "au", "mtl"):
                out[name].append(getattr(labels, name)[rows])
        else:
            n = len(rows)
            out["va"].append(np.full((n, 2), np.nan, np.float32)), out["mtl"].append(np.zeros(n, bool))
            out["expr"].append(np.full(n, -1, np.int8)), out["au"].append(np.full((n, N_AU), -1, np.int8))
        shards.append(ShardRows(key, rows, start))
        start += len(rows)
    if not out["ids"]:
        note = f" ({', '.join(f'{n} items {why}' for why, n in skipped.items())})" if skipped else ""
        raise DataError(f"cache {cache.url}: no complete item in splits {list(splits or [])} with feature sets "
                        f"{face.name!r} and {audio.name!r}{note}")
    return Selection(out["ids"], np.asarray(out["lens"], np.int64), out["splits"], out["datasets"],
                     *(np.concatenate(out[k]) for k in ("ok", "va", "expr", "au", "mtl")),
                     shards, face.name, audio.name, skipped)


def parse_memory(text: str | float | int | None) -> int:
    """Bytes from "0.5" (a fraction of this machine's RAM), "12G", "500M", "2T" or a byte count;
    None: DEFAULT_MEMORY_FRACTION of the RAM."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if text is None or text == "":
        return int(DEFAULT_MEMORY_FRACTION * total)
    value = str(text).strip().upper().removesuffix("B")
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    try:
        if value and value[-1] in units:
            return int(float(value[:-1]) * units[value[-1]])
        number = float(value)
    except ValueError:
        raise ConfigError(f"max_memory: {text!r} is not a size (e.g. 0.5 for half the RAM, 12G, 500M)") from None
    return int(number * total) if number <= 1 else int(number)


def checkpoint_sets(ckpt: dict) -> dict:
    """The feature sets a run was trained on, as `load_frame_data` keywords (None: the cache's
    first of each kind, for runs made before feature sets). Their fingerprints are compared with
    the cache's by `emokd.train.cache_check.check_same_cache`."""
    saved = ckpt.get("feature_sets") or {}
    return {"face_set": saved.get("face"), "audio_set": saved.get("audio")}


AUDIO_FIELDS = ("audio_encoder", "audio_weights", "audio_layer", "audio_input", "audio_mode", "sample_rate",
                "window_s", "audio_track")


def extraction_of(cache, sets: dict) -> dict:
    """What made the feature sets a run reads (stored in its checkpoints; `emokd predict-video`
    redoes it): the extraction config of the run that added the face set, with the audio fields of
    the audio set's run and both set names, their settings, and their encoder records."""
    face, audio = cache.feature_set(sets["face"]), cache.feature_set(sets["audio"])
    config = dict(face.config or cache.config)
    audio_config = audio.config or cache.config
    config.update({k: audio_config[k] for k in AUDIO_FIELDS if k in audio_config})
    config.update(face_set=face.name, audio_set=audio.name)
    return {"config": config, "settings": {**face.settings, **audio.settings},
            "encoders": [face.record(), audio.record()]}


def fill_index(face_ok: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """For each row, the nearest row at or before it *of its own item* with a face (-1 if none)."""
    pos = np.where(face_ok, np.arange(len(face_ok)), -1)
    src = np.maximum.accumulate(pos) if len(pos) else pos
    return np.where(src >= np.repeat(starts, lens), src, -1)


def read_features(cache, sel: Selection, face: np.ndarray, audio: np.ndarray, src: np.ndarray,
                  progress=None) -> None:
    """Fill `face` (rows without a face take the row of `src`, zeros where -1) and `audio`, in place."""
    def read(part: ShardRows) -> tuple[np.ndarray, np.ndarray]:
        """The part's rows only, so that shards read ahead hold no rows that are not loaded."""
        arrays = cache.read_shard(part.key, [sel.face_set, sel.audio_set])
        return arrays[sel.face_set][part.rows], arrays[sel.audio_set][part.rows]

    for part, (f, a) in zip(sel.shards, in_order(read, sel.shards)):
        lo, hi = part.start, part.start + len(part.rows)
        audio[lo:hi] = a
        local = src[lo:hi] - lo
        outside = (local < 0) & (src[lo:hi] >= 0)     # a face row before this shard: never (items stay in one)
        if outside.any():
            raise CacheError(f"shard {part.key}: an item's rows continue outside its shard")
        face[lo:hi] = np.where((local >= 0)[:, None], f[np.maximum(local, 0)], 0)
        if progress is not None:
            progress(hi - lo)


def read_soft(cache, sel: Selection, run: str) -> dict[str, np.ndarray]:
    """The teacher outputs of every loaded row, float32; CacheError for a shard without them."""
    soft: dict[str, np.ndarray] = {}
    for part, arrays in zip(sel.shards, in_order(lambda part: cache.read_shard_soft(run, part.key), sel.shards)):
        if arrays is None:
            raise CacheError(f"cache {cache.url}: no soft labels of teacher run {run!r} for shard "
                             f"{part.key!r}; export the teacher's predictions first")
        for name, values in arrays.items():
            values = np.asarray(values, np.float32).reshape(len(values), -1)[part.rows]
            if name not in soft:
                soft[name] = np.zeros((sel.n_frames, values.shape[1]), np.float32)
            soft[name][part.start:part.start + len(part.rows)] = values
    return soft
