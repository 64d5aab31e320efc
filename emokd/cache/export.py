"""`emokd cache ls` and `emokd cache export`: a cache's items for people who analyse features
outside emokd.

`list_items` gives one row per item (id, dataset, frames, status, source, shard, its complete
feature sets). `export_items` writes the features and labels of chosen items, read shard by shard:
  npz      one `<escaped id>.npz` per item in a folder: face, face_ok, audio, audio_ok, pts (the
           chosen sets), va, expr, au, mtl, and item_id, face_set, audio_set, splits (JSON text);
  parquet  one table, one row per frame: item_id, dataset, frame, pts, face_ok, audio_ok, valence,
           arousal, expr, au (12 int8, -1 missing), face, audio (float16 lists), split_va,
           split_expr, split_au; the set names and fingerprints in the file's metadata.
Files are written under a temporary name and renamed, so a killed export never leaves a file that
looks whole.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emokd.errors import CacheError, ConfigError
from emokd.cache.keys import encode_key
from emokd.cache.writer import STATUS_COMPLETE

FORMATS = ("npz", "parquet")


def list_items(cache, status: str | None = None, dataset: str | None = None) -> list[dict]:
    """One row per item of any shard (failed and interrupted ones included, unless `status` says)."""
    rows = []
    for item_id, record in cache.item_records().items():
        if status not in (None, "all") and record["status"] != status:
            continue
        if dataset is not None and record["dataset"] != dataset:
            continue
        source = record.get("source") or {}
        rows.append({"id": item_id, "dataset": record["dataset"], "frames": record["n_frames"],
                     "status": record["status"], "source": source.get("path") or source.get("url") or "",
                     "shard": record["shard"], "sets": record["sets"]})
    return rows


def format_rows(rows: list[dict]) -> list[str]:
    widths = {k: max([len(k)] + [len(str(r[k])) for r in rows]) for k in ("id", "dataset", "frames", "status")}
    head = "  ".join(k.ljust(widths[k]) for k in widths) + "  source"
    return [head] + ["  ".join(str(r[k]).ljust(widths[k]) for k in widths) + f"  {r['source']}" for r in rows]


@dataclass
class ExportReport:
    items: int
    frames: int
    files: list[str]


def _chosen(cache, item_ids, dataset, split) -> list[str]:
    """The chosen complete items, in shard order (so that each shard is read once)."""
    ids = cache.item_ids() if not item_ids else list(item_ids)
    unknown = [i for i in ids if not cache.is_complete(i)]
    if unknown:
        raise CacheError(f"{cache.url}: no complete item(s) {unknown[:5]} (see `emokd cache ls`)")
    index = cache.index          # as read by item_ids / is_complete: not read again
    wanted = set(ids)
    keep = []
    for key, state in index.shards.items():
        if not state.complete:
            continue
        table = state.table
        mine = [i for i in index.items_of(key) if i in wanted]
        if not mine:
            continue
        labels = cache.read_shard_labels(key) if split is not None else None
        for item_id in mine:
            i = index.location(item_id).index
            if dataset is not None and table.dataset[i] != dataset:
                continue
            if labels is not None:
                splits = labels.splits(i) or {}
                if split not in splits.values() and labels.columns["split"][i] != split:
                    continue
            keep.append(item_id)
    if not keep:
        raise CacheError(f"{cache.url}: no complete item matches (dataset {dataset!r}, split {split!r})")
    return keep


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _item_arrays(cache, item_id: str, face: str, audio: str) -> dict:
    arrays = cache.read_item(item_id, ["face", "face_ok", "audio", "audio_ok", "pts"], face=face, audio=audio)
    labels = cache.read_labels(item_id)
    return {**arrays, **{k: labels[k] for k in ("va", "expr", "au", "mtl")}, "labels": labels}


def export_items(cache, out: str | Path, fmt: str = "npz", item_ids=None, dataset: str | None = None,
                 split: str | None = None, face_set: str | None = None,
                 audio_set: str | None = None) -> ExportReport:
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r}: use one of {list(FORMATS)}")
    face, audio = cache.choose_set("face", face_set), cache.choose_set("audio", audio_set)
    ids = _chosen(cache, item_ids, dataset, split)
    out = Path(out)
    meta = {"face_set": face.name, "audio_set": audio.name,
            "fingerprints": {face.name: face.fingerprint, audio.name: audio.fingerprint}, "cache": cache.url}
    if fmt == "npz":
        out.mkdir(parents=True, exist_ok=True)
        files, frames = [], 0
        for item_id in ids:
            got = _item_arrays(cache, item_id, face.name, audio.name)
            labels = got.pop("labels")
            path = out / f"{encode_key(item_id)}.npz"
            extra = {"item_id": np.array(item_id), "face_set": np.array(face.name), "audio_set": np.array(audio.name),
                     "splits": np.array(json.dumps(labels["splits"]))}
            _atomic(path, lambda tmp, got=got, extra=extra: _savez(tmp, {**got, **extra}))
            files.append(str(path))
            frames += len(got["pts"])
        return ExportReport(len(ids), frames, files)
    return _export_parquet(cache, out, ids, face.name, audio.name, meta)


def _savez(path: Path, arrays: dict) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _export_parquet(cache, out: Path, ids: list[str], face: str, audio: str, meta: dict) -> ExportReport:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ConfigError("Parquet export needs pyarrow: pip install 'emokd[parquet]' (or pyarrow)") from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = 0

    def write(tmp: Path) -> None:
        nonlocal frames
        writer = None
        try:
            for item_id in ids:
                got = _item_arrays(cache, item_id, face, audio)
                labels = got["labels"]
                n = len(got["pts"])
                splits = labels["splits"] or {}
                columns = {
                    "item_id": pa.array([item_id] * n), "dataset": pa.array([labels["dataset"]] * n),
                    "frame": pa.array(np.arange(n, dtype=np.int32)), "pts": pa.array(got["pts"]),
                    "face_ok": pa.array(got["face_ok"]), "audio_ok": pa.array(got["audio_ok"]),
                    "valence": pa.array(got["va"][:, 0]), "arousal": pa.array(got["va"][:, 1]),
                    "expr": pa.array(got["expr"]), "au": pa.FixedSizeListArray.from_arrays(pa.array(got["au"].ravel()), 12),
                    "face": pa.FixedSizeListArray.from_arrays(pa.array(got["face"].ravel()), got["face"].shape[1]),
                    "audio": pa.FixedSizeListArray.from_arrays(pa.array(got["audio"].ravel()), got["audio"].shape[1]),
                    **{f"split_{t.lower()}": pa.array([splits.get(t, "unlabelled")] * n) for t in ("VA", "EXPR", "AU")},
                }
                table = pa.table(columns)
                if writer is None:
                    schema = table.schema.with_metadata({"emokd": json.dumps(meta)})
                    writer = pq.ParquetWriter(str(tmp), schema)
                writer.write_table(table.cast(writer.schema))
                frames += n
        finally:
            if writer is not None:
                writer.close()

    _atomic(out, write)
    return ExportReport(len(ids), frames, [str(out)])

