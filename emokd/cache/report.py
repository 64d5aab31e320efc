"""`emokd cache info`: what a cache holds, as a dict (for --json) and as text."""

from __future__ import annotations

import json

import numpy as np

from emokd.constants import TASKS
from emokd.cache import location
from emokd.cache.labels import SPLITS
from emokd.cache.writer import STATUS_COMPLETE

_TASK_KEYS = {"VA": "va", "EXPR": "expr", "AU": "au"}


def _label_counts(cache, index) -> dict[str, dict[str, int]]:
    """Per split: items and frames (by the item's split), and frames carrying a VA / EXPR / AU label
    counted in that task's own split."""
    counts: dict[str, dict[str, int]] = {}

    def row(split):
        return counts.setdefault(split, {"items": 0, "frames": 0, "va": 0, "expr": 0, "au": 0})
    for key, state in index.shards.items():
        labels = cache.read_shard_labels(key) if state.complete else None
        if labels is None:
            continue
        table = state.table
        has = {"va": (~np.isnan(labels.va)).all(axis=1), "expr": labels.expr != -1,
               "au": (labels.au != -1).any(axis=1)}
        for i in range(len(table.ids)):
            if table.status[i] != STATUS_COMPLETE:
                continue
            lo, hi = int(table.first[i]), int(table.first[i] + table.length[i])
            r = row(labels.columns["split"][i])
            r["items"] += 1
            r["frames"] += hi - lo
            for task in TASKS:
                name = _TASK_KEYS[task]
                row(labels.columns["splits"][i][task])[name] += int(has[name][lo:hi].sum())
    order = {s: n for n, s in enumerate(SPLITS)}
    return {split: counts[split] for split in sorted(counts, key=lambda s: order.get(s, 99))
            if any(counts[split].values())}


def _set_rows(cache, index) -> list[dict]:
    shards = [s for s in index.shards.values() if s.complete]
    return [{"name": fs.name, "kind": fs.kind, "dim": fs.dim, "encoder": fs.encoder.get("name"),
             "layer": fs.encoder.get("layer"), "weights_sha256": fs.encoder.get("weights_sha256"),
             "fingerprint": fs.fingerprint, "settings": fs.settings,
             "shards_complete": sum(s.set_complete(fs.name) for s in shards), "shards": len(shards)}
            for fs in cache.feature_sets]


def _media_notes(complete: dict[str, dict]) -> dict:
    """Videos whose frame timestamps were repaired, and videos PyAV decoded where decord was asked
    for (`complete`: item id -> what its item table records)."""
    repaired = {vid: int(a["pts_repairs"]) for vid, a in complete.items() if a.get("pts_repairs")}
    pyav = {vid: (a.get("decoding") or {}).get("reason") for vid, a in complete.items()
            if (a.get("decoding") or {}).get("reason")}
    return {"repaired": repaired, "pyav": pyav}


def cache_info(cache) -> dict:
    cache.refresh()
    index = cache.index          # read once: every count below is of the same moment
    frames = sum(loc.length for loc in index.locations.values())
    size = location.size_on_disk(cache.url, cache.storage_options)
    finished = set(cache.soft_runs(True))
    soft = {run: {"shards": len(cache.soft_shards(run, index)), "complete": run in finished}
            for run in cache.soft_runs()}
    shards = index.shards
    complete = {i: r for i, r in cache.item_records(index).items() if r["status"] == STATUS_COMPLETE}
    return {
        "url": cache.url, "fingerprint": cache.fingerprint, "schema_version": cache.schema_version,
        "created": cache.root.attrs.get("created"), "feature_sets": _set_rows(cache, index),
        "settings": cache.settings, "encoders": cache.encoders, "feature_dims": cache.feature_dims,
        "items": len(index.locations), "frames": frames,
        "shards": sum(s.complete for s in shards.values()),
        "packed_shards": sum(s.complete and len(s.table.ids) > 1 for s in shards.values()),
        "incomplete": index.incomplete_shards(),
        "failures": cache.failures(), "labels": _label_counts(cache, index), "soft_runs": soft,
        "media": _media_notes(complete),
        "size_bytes": size, "bytes_per_frame": (size / frames) if frames else None,
        "config": cache.config, "made_by": cache.made_by,
    }


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def format_info(info: dict) -> str:
    lines = [f"cache        {info['url']}",
             f"fingerprint  {info['fingerprint']} (schema {info['schema_version']}, created {info['created']})",
             f"items        {info['items']} complete, {info['frames']} frames, in {info['shards']} shards "
             f"({info['packed_shards']} packed)",
             f"size         {human_bytes(info['size_bytes'])}"
             + (f" ({info['bytes_per_frame']:.0f} bytes/frame)" if info["bytes_per_frame"] else ""),
             "feature sets"]
    for row in info["feature_sets"]:
        lines.append(f"  {row['name']:<26} {row['kind']:<5} {row['encoder']} layer {row['layer']} -> "
                     f"{row['dim']}-d, weights sha256 {str(row['weights_sha256'])[:16]}; "
                     f"{row['shards_complete']}/{row['shards']} shards")
        lines += ["  " + line for line in _key_values(row["settings"])]
    if info["labels"]:
        lines.append("labels       (items / frames / frames with VA, EXPR, AU in each task's split)")
        for split, row in info["labels"].items():
            lines.append(f"  {split:<11} {row['items']} / {row['frames']} / {row['va']}, {row['expr']}, {row['au']}")
    else:
        lines.append("labels       none")
    for run, row in info["soft_runs"].items():
        lines.append(f"soft labels  {run}: {row['shards']} shards{'' if row['complete'] else ' (run not finished)'}")
    lines.append(f"incomplete   {len(info['incomplete'])} shard(s)" + (": " + ", ".join(info["incomplete"][:10])
                                                                    if info["incomplete"] else ""))
    media = info.get("media") or {}
    if media.get("repaired"):
        repaired = media["repaired"]
        lines.append(f"repairs      {len(repaired)} videos with repaired frame timestamps ({sum(repaired.values())} "
                     "stamps): " + ", ".join(f"{vid} ({n})" for vid, n in list(repaired.items())[:10]))
    if media.get("pyav"):
        lines.append(f"decoding     {len(media['pyav'])} videos decoded with PyAV instead of decord")
        lines += [f"  {vid}: {why}" for vid, why in list(media["pyav"].items())[:10]]
    lines.append(f"failed       {len(info['failures'])}")
    for vid, message in list(info["failures"].items())[:20]:
        lines.append(f"  {vid}: {message}")
    for record in info.get("made_by", [])[-3:]:
        lines.append(f"written by   {record.get('command')} (emokd {record.get('emokd_version')}, "
                     f"{record.get('time')}, dataset {record.get('dataset')})")
    if info["config"]:
        lines.append("config (of the run that created the cache)")
        lines += _key_values(info["config"])
    return "\n".join(lines)


def _key_values(values: dict, width: int = 100) -> list[str]:
    """One "  key: value" line per entry, nested values as compact JSON, cut at `width` characters."""
    out = []
    for key, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "), default=str)
        line = f"  {key}: {text}"
        out.append(line if len(line) <= width else line[:width - 3] + "...")
    return out
