"""A schema version 1 cache written with plain zarr, as emokd 1 laid it out (one group per video;
checked against a cache made by the last version 1 emokd's extract-features and train: the same
groups, arrays and attributes), for the migration tests. Labels come in both version 1 forms: one
`split` (before per-task splits) and `split` with `splits` per task."""

from pathlib import Path

import numpy as np
import zarr

from cache_support import video_values
from emokd.cache.keys import encode_key
from emokd.cache.writer import create_frame_array

FACE = {"name": "fer_default", "kind": "face", "output_dim": 8, "layer": "embedding",
        "input_spec": {"size": 48}, "weights_sha256": "a" * 64}
AUDIO = {"name": "soundnet8", "kind": "audio", "output_dim": 5, "layer": "conv8",
         "input_spec": {"sample_rate": 22050, "window_s": 10.0}, "weights_sha256": "b" * 64}
SETTINGS = {"face_encoder": FACE, "audio_encoder": AUDIO, "face_source": "crops",
            "face_detector": {"name": "mtcnn", "weights_sha256": "c" * 64}, "crop_size": 112,
            "sample_rate": 22050, "window_s": 10, "audio_mode": "shared-trunk"}
CONFIG = {"face_encoder": "fer_default", "workers": 2, "batch_size": 64}

# the stills' labels were written with per-task splits (the others with one split only)
STILL_SPLITS = {"VA": "validation", "EXPR": "train", "AU": "train", "MTL": "unlabelled"}
MADE_BY = [{"emokd_version": "0.1.0", "command": "emokd extract-features /data --cache c.zarr", "cwd": "/data",
            "time": "2024-01-01T00:00:00Z"}]
V1_FILES = {"extract.log": "2024-01-01 00:00:00 INFO emokd.extract: extracting 22 videos\n",
            "extract_config.yaml": "face_encoder: fer_default\nworkers: 2\n"}

# id -> (frames, dataset, labels written: None | "expr" | "all")
VIDEOS = {"118-30-640x480": (1200, "affwild2", "all"), "10-60-1280x720_left": (90, "affwild2", "expr"),
          **{f"affectnet/{i:03d}": (1, "affectnet", "all") for i in range(20)}}


def write_v1_cache(path) -> dict:
    """The cache at `path`; returns what was written: {id: {"values": arrays, "labels": (va, expr, au, split)}}."""
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    for name in ("videos", "labels", "soft", "failures"):
        root.create_group(name)
    written = {}
    for n, (vid, (frames, dataset, labelled)) in enumerate(VIDEOS.items()):
        key = encode_key(vid)
        values = video_values(frames, seed=n)
        group = root["videos"].create_group(key, attributes={
            "video_id": vid, "n_frames": frames, "status": "writing", "fps": 30.0, "dataset": dataset,
            "split": "train", "source": {"path": f"/data/{vid}.mp4", "size": 100 + n, "mtime_ns": 7},
            "pts_source": "container", "face_source": "crops", "writer": "x" * 32, "started": "2024-01-01T00:00:00+00:00",
            "decoding": {"decoder": "decord"}, "audio": {"sample_rate": 44100}, "pts_repairs": 0})
        for name, array in values.items():
            dim = array.shape[1] if array.ndim == 2 else None
            create_frame_array(group, name, frames, dim, array.dtype)[...] = array
        group.attrs["status"] = "complete"
        rng = np.random.default_rng(n)
        va = np.clip(rng.standard_normal((frames, 2)), -1, 1).astype(np.float32)
        expr = rng.integers(0, 8, frames).astype(np.int8)
        au = rng.integers(0, 2, (frames, 12)).astype(np.int8)
        if labelled == "expr":
            va[:] = np.nan
            au[:] = -1
        split = "validation" if vid.endswith("_left") else "train"
        extra = {"splits": STILL_SPLITS, "written": "2024-01-01T00:00:00+00:00"} if dataset == "affectnet" else {}
        labels = root["labels"].create_group(key, attributes={
            "video_id": vid, "split": split, "dataset": dataset, "n_frames": frames,
            "n_label_rows": {"va": frames, "expr": frames, "au": frames}, "status": "writing", **extra})
        for name, array in (("va", va), ("expr", expr), ("au", au)):
            dim = array.shape[1] if array.ndim == 2 else None
            create_frame_array(labels, name, frames, dim, array.dtype)[...] = array
        labels.attrs["status"] = "complete"
        written[vid] = {"values": values, "labels": (va, expr, au, split)}
    run = root["soft"].create_group("teacher", attributes={"run": "teacher", "status": "complete",
                                                           "teacher_run": "/runs/teacher", "checkpoint_sha256": "d" * 64})
    for vid in ("118-30-640x480", "affectnet/003"):
        frames = VIDEOS[vid][0]
        soft = run.create_group(encode_key(vid), attributes={"video_id": vid, "n_frames": frames, "status": "writing",
                                                             "checkpoint_sha256": "d" * 64})
        logits = np.arange(frames * 8, dtype=np.float32).reshape(frames, 8) / 7
        outputs = {"expr": logits, "va": logits[:, :2] / 100, "au": np.concatenate([logits, logits[:, :4]], axis=1) - 1}
        for name, values in outputs.items():
            create_frame_array(soft, name, frames, values.shape[1], np.float32)[...] = values
        soft.attrs["status"] = "complete"
        written[vid]["soft"] = outputs
    half = root["videos"].create_group("half", attributes={"video_id": "half", "n_frames": 3, "status": "writing"})
    create_frame_array(half, "face", 3, 8, np.float16)
    root["failures"].create_group("broken", attributes={"video_id": "broken", "message": "broken.mp4: no frames",
                                                        "time": "2024-01-01T00:00:00+00:00", "attempts": 1})
    root.attrs.update({"emokd_cache": "emokd feature cache", "schema_version": 1, "fingerprint": "e" * 64,
                       "settings": SETTINGS, "encoders": {"face": FACE, "audio": AUDIO},
                       "encoder_order": ["face", "audio"], "config": CONFIG, "created": "2024-01-01T00:00:00+00:00",
                       "made_by": MADE_BY})
    for name, text in V1_FILES.items():       # version 1 kept these inside the store
        (Path(path) / name).write_text(text)
    return written
