"""`emokd cache info`: what a cache holds, as a dict (for --json) and as text."""

from __future__ import annotations

import json

import numpy as np

from emokd.cache import location
from emokd.cache.labels import GROUP as LABELS, SPLITS
from emokd.cache.writer import STATUS_COMPLETE


def _label_counts(cache) -> dict[str, dict[str, int]]:
    """Per split: videos and frames (by each video's summary split, "mixed" when its tasks are in
    different splits), and frames carrying a VA / EXPR / AU label (by that task's own split)."""
    counts: dict[str, dict[str, int]] = {}
    if LABELS not in cache.root:
        return counts
    for _key, group in cache.root[LABELS].groups():
        attrs = group.attrs
        if attrs.get("status") != STATUS_COMPLETE:
            continue
        def row(split: str) -> dict[str, int]:
            return counts.setdefault(split, {"videos": 0, "frames": 0, "va": 0, "expr": 0, "au": 0})

        summary = attrs.get("split", "unlabelled")
        splits = attrs.get("splits") or dict.fromkeys(("VA", "EXPR", "AU"), summary)
        va, expr, au = group["va"][...], group["expr"][...], group["au"][...]
        row(summary)["videos"] += 1
        row(summary)["frames"] += len(expr)
        row(splits["VA"])["va"] += int((~np.isnan(va)).all(axis=1).sum())
        row(splits["EXPR"])["expr"] += int((expr != -1).sum())
        row(splits["AU"])["au"] += int((au != -1).any(axis=1).sum())
    return {split: counts[split] for split in sorted(counts, key=lambda s: SPLITS.index(s) if s in SPLITS else 99)}


def _media_notes(complete: dict[str, dict]) -> dict:
    """Videos whose frame timestamps were repaired, and videos PyAV decoded instead of decord."""
    repaired = {vid: int(a["pts_repairs"]) for vid, a in complete.items() if a.get("pts_repairs")}
    pyav = {vid: (a.get("decoding") or {}).get("reason", "") for vid, a in complete.items()
            if (a.get("decoding") or {}).get("decoder") == "pyav"}
    return {"repaired": repaired, "pyav": pyav}


def cache_info(cache) -> dict:
    records = cache.video_records()
    complete = {vid: a for vid, a in records.items() if a.get("status") == STATUS_COMPLETE}
    frames = sum(int(a.get("n_frames", 0)) for a in complete.values())
    size = location.size_on_disk(cache.url, cache.storage_options)
    soft = {run: {"videos": len(cache.soft_video_ids(run)), "complete": run in cache.soft_runs(True)}
            for run in cache.soft_runs()}
    return {
        "url": cache.url, "fingerprint": cache.fingerprint, "schema_version": cache.schema_version,
        "created": cache.root.attrs.get("created"), "settings": cache.settings,
        "encoders": cache.encoders, "feature_dims": cache.feature_dims,
        "videos": len(complete), "frames": frames,
        "incomplete": [vid for vid in records if vid not in complete],
        "failures": cache.failures(), "labels": _label_counts(cache), "soft_runs": soft,
        "media": _media_notes(complete),
        "size_bytes": size, "bytes_per_frame": (size / frames) if frames else None,
        "config": cache.config, "made_by": cache.made_by,
    }


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def format_info(info: dict) -> str:
    lines = [f"cache        {info['url']}",
             f"fingerprint  {info['fingerprint']} (schema {info['schema_version']}, created {info['created']})",
             f"videos       {info['videos']} complete, {info['frames']} frames",
             f"size         {_human_bytes(info['size_bytes'])}"
             + (f" ({info['bytes_per_frame']:.0f} bytes/frame)" if info["bytes_per_frame"] else ""),
             "encoders"]
    for record in info["encoders"]:
        lines.append(f"  {record['array']:<10} {record['name']} layer {record.get('layer')} -> "
                     f"{record['output_dim']}-d, weights sha256 {str(record.get('weights_sha256'))[:16]}")
    lines.append("settings (in the fingerprint)")
    lines += _key_values(info["settings"])
    if info["labels"]:
        lines.append("labels       (videos / frames / frames with VA, EXPR, AU)")
        for split, row in info["labels"].items():
            lines.append(f"  {split:<11} {row['videos']} / {row['frames']} / {row['va']}, {row['expr']}, {row['au']}")
    else:
        lines.append("labels       none")
    for run, row in info["soft_runs"].items():
        lines.append(f"soft labels  {run}: {row['videos']} videos{'' if row['complete'] else ' (run not finished)'}")
    lines.append(f"incomplete   {len(info['incomplete'])}" + (": " + ", ".join(info["incomplete"][:10])
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
