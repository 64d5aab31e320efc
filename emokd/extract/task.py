"""The extraction task of one shard: per item probe, decode in batches, frozen encoders, write;
then one commit for the shard.

`extract_shard` is what one Dask task runs (emokd/extract/plan.py says which items a shard holds;
emokd/extract/shard_task.py writes them). It opens the cache itself, writes one shard (or adds this
run's feature sets to a complete one) and returns a small summary dict (never frames), so the
driver stays light. An item that fails is marked failed in the shard and its neighbours are kept. Encoders are loaded once per worker process
(`load_encoders`, in emokd/extract/encoders.py, keeps them in a module-level cache keyed by the
encoder settings). A complete shard is skipped; the driver's --overwrite starts the cache afresh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import traceback
from pathlib import Path

import numpy as np

from emokd.errors import ConfigError, DataError, EmokdError, environment_error
from emokd.logs import native_stderr_to_log
from emokd.cache.keys import encode_key
from emokd.extract.audio import load_audio
from emokd.extract.config import ExtractConfig
from emokd.extract.encoders import Encoders, fingerprint_settings, load_encoders
from emokd.extract.faces import iter_face_batches
from emokd.extract.progress import report_frames
from emokd.index.crop_files import crop_files
from emokd.extract.video import DecodeReport, DecoderMismatch
from emokd.extract.timing import ItemProbe, audio_features, audio_ok, probe_item, window_end_samples

log = logging.getLogger(__name__)

FLOAT16_MAX = float(np.finfo(np.float16).max)
# Shared-trunk mode computes the trunk over the span of this many frames' windows at a time: memory
# stays bounded on long videos, and each chunk costs one extra window length of trunk.
AUDIO_CHUNK_FRAMES = 1024


class _Collect(logging.Handler):
    """Keeps the log records of one task so that the driver can write them to its log file."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


class StageClock:
    """Seconds per stage of one task (probe, audio_in, audio_encode, faces_in, face_encode, write;
    decord_check is the part of faces_in spent checking decord's frames against PyAV's)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


def _to_float16(values: np.ndarray, what: str, video_id: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    bad = ~np.isfinite(values) | (np.abs(values) > FLOAT16_MAX)
    if bad.any():
        raise DataError(f"{video_id}: {what} encoder gave {int(bad.sum())} values that are not finite "
                        f"or exceed the float16 range of the cache")
    return values.astype(np.float16)


def extract_shard(task, cache_url: str, cfg: ExtractConfig, expected: dict | None = None) -> dict:
    """Write one shard task (emokd.extract.plan.ShardTask) into the cache; never raises for a bad item.

    Returns {"shard", "items": {id: {"status": done|skipped|failed|absent, "n_frames", "error",
    "media", "source"}}, "seconds", "log", "timings"}: "log" holds the task's log lines (the driver
    writes them to its log file), "timings" the seconds per stage, "media" what the driver's summary
    reports about an item's file (the decoder that served it and why, repaired frame timestamps),
    "source" the identity of the file as read (absent when it could not be read; the driver records
    it with a failure).
    `expected` is the driver's fingerprint settings: a worker whose encoder weights differ (another
    machine, another file) refuses to write instead of mixing features.
    """
    from emokd.cache import FeatureCache

    start = time.perf_counter()
    collect = _Collect()
    root = logging.getLogger("emokd")
    if root.getEffectiveLevel() > logging.INFO:  # a fresh worker process logs warnings only
        root.setLevel(logging.INFO)
    root.addHandler(collect)
    live = [(i, item) for i, item in zip(task.ids, task.items) if item is not None]
    result = {"shard": task.key, "items": {i: {"status": "failed", "kind": "video", "n_frames": 0, "error": None,
                                               "notes": []} for i, _ in live},
              "seconds": 0.0, "log": collect.lines, "timings": {}}
    try:
        cache = FeatureCache.open(cache_url, mode="r+", storage_options=cfg.storage_options)
        state = cache.find_shard(task.key)       # its own metadata only, not every shard's
        if task.new and state is not None and state.complete:
            for row in result["items"].values():
                row["status"] = "skipped"
            return result
        encoders = load_encoders(cfg)
        if expected is not None:
            mine = fingerprint_settings(cfg, encoders)
            differ = sorted(k for k in expected if expected[k] != mine.get(k))
            if differ:
                raise ConfigError(f"this worker's settings differ from the driver's in {differ}: "
                                  "are the weights files the same on every machine?")
        clock = StageClock()
        result["timings"] = clock.seconds
        from emokd.extract.shard_task import write_added_sets, write_new_shard

        write = write_new_shard if task.new else write_added_sets
        with native_stderr_to_log(logging.getLogger("emokd.libav")):   # decord's and libav's lines
            write(cache, task, cfg, encoders, clock, result["items"])
    except Exception as exc:  # the whole task failed: every item not done is failed with this error
        kind = "environment" if environment_error(exc) is not None else "video"
        by_id = dict(live)
        for item_id, row in result["items"].items():
            if row["status"] != "done":
                item = by_id[item_id]
                row.update(status="failed", kind=kind, n_frames=0, error=_describe(item, exc))
        trace = "".join(traceback.format_tb(exc.__traceback__))
        collect.lines.append(f"traceback (most recent call last):\n{trace}")  # into the driver's log file
    finally:
        root.removeHandler(collect)
        result["seconds"] = time.perf_counter() - start
    return result


def extract_video(item, cache_url: str, cfg: ExtractConfig, expected: dict | None = None) -> dict:
    """One item alone in its shard (how the driver stores a long video); the per-item summary
    {"video_id", "status", "n_frames", "seconds", "error", "log", "timings"}."""
    from emokd.cache import FeatureCache
    from emokd.extract.encoders import feature_sets
    from emokd.extract.plan import ShardTask

    sets = [fs.name for fs in feature_sets(cfg, load_encoders(cfg))]   # the ones extract_shard uses
    cache = FeatureCache.open(cache_url, storage_options=cfg.storage_options)
    if cache.is_complete(item.video_id, sets):
        return {"video_id": item.video_id, "status": "skipped", "n_frames": cache.n_frames(item.video_id),
                "seconds": 0.0, "error": None, "log": [], "timings": {}}
    out = extract_shard(ShardTask(encode_key(item.video_id), [item], [item.video_id], sets, True), cache_url,
                        cfg, expected)
    return {"video_id": item.video_id, **out["items"][item.video_id], "seconds": out["seconds"],
            "log": out["log"], "timings": out["timings"]}


def _describe(item, exc: Exception) -> str:
    """The error as one line that names the file (once) and the video."""
    where = str(item.video_path or item.crop_dir or item.video_id)
    text = str(exc) if isinstance(exc, EmokdError) else f"{type(exc).__name__}: {exc}"
    return text if where in text else f"{where}: {text}"


def _face_source(item, wanted: str, numbering: str) -> tuple[str, str | None]:
    """Where this item's faces come from (crops, detector, whole-frame, or none: face_ok all False),
    and a note for the console when its crop folder cannot be used. Under "auto" a missing, empty
    or unusable crop folder falls back to the detector; a folder numbered against the rule is refused."""
    if wanted in ("detector", "whole-frame"):
        return wanted, None
    if item.face_boxes is not None:
        return "crops", None
    problem = None
    if item.crop_dir is not None:
        if not Path(item.crop_dir).is_dir():
            problem = f"crop folder {item.crop_dir} not found"
        elif not crop_files(Path(item.crop_dir), numbering):  # DataError for a crop 00000 under 1-based
            problem = f"crop folder {item.crop_dir} holds no crop image (NNNNN.jpg, .jpeg or .png)"
        else:
            return "crops", None
    if wanted == "auto":
        return "detector", None if problem is None else f"{problem}; faces from the detector"
    return "none", f"{problem or 'no crop folder'}; face_ok is False on every frame (face_source: crops)"


def media_attrs(info) -> dict:
    """What the cache records about a media file before its rows: display geometry, time repairs."""
    if info is None:
        return {}
    return {"display": info.display_geometry.record(), "pts_repairs": len(info.repaired),
            "pts_repaired_frames": list(info.repaired[:100]), "audio_tracks": len(info.audio_tracks)}


def _audio_stage(item, probe: ItemProbe, cfg: ExtractConfig, encoders: Encoders, writer, clock) -> dict | None:
    """Audio features of every frame, in chunks of frames so memory stays bounded on long videos;
    returns the record of the track used (None: no audio track)."""
    n, dim = probe.n_frames, int(encoders.audio.output_dim)
    with clock("audio_in"):
        track = load_audio(item.video_path, probe.info, cfg.sample_rate, cfg.audio_track) \
            if probe.info is not None else None
    if track is None or not track.has_audio:
        writer.write("audio", 0, np.zeros((n, dim), np.float16))
        writer.write("audio_ok", 0, np.zeros(n, bool))
        if probe.info is not None:
            log.info("%s: no audio track; audio features are zeros and audio_ok is False", item.video_id)
        return track.record() if track is not None else None
    ends = window_end_samples(probe.info, cfg.sample_rate)
    shared = cfg.audio_mode == "shared-trunk"
    chunk = max(cfg.batch_size, AUDIO_CHUNK_FRAMES) if shared else cfg.batch_size
    for start in range(0, n, chunk):
        part = ends[start:start + chunk]
        with clock("audio_encode"):
            feats = audio_features(encoders.audio, track, part, cfg.window_samples, cfg.audio_mode,
                                   cfg.batch_size)
        with clock("write"):
            writer.write("audio", start, _to_float16(feats, "audio", item.video_id))
            writer.write("audio_ok", start, audio_ok(track, part))
    return track.record()


def _face_stage(item, probe: ItemProbe, cfg: ExtractConfig, encoders: Encoders, writer, face_source: str,
                clock) -> tuple[int, DecodeReport]:
    """Face features of every frame; (frames with a face, how the video was decoded). When decord's
    frames turn out wrong after rows were written, the stage starts again on PyAV (rows rewritten)."""
    report = DecodeReport()
    if face_source == "none":
        n, dim = probe.n_frames, int(encoders.face.output_dim)
        writer.write("face", 0, np.zeros((n, dim), np.float16))
        writer.write("face_ok", 0, np.zeros(n, bool))
        return 0, report
    detector = encoders.detector if face_source == "detector" else None
    if face_source in ("detector", "whole-frame"):  # iter_face_batches prefers crops when present
        item = dataclasses.replace(item, crop_dir=None, face_boxes=None)
    try:
        return _face_rows(item, probe, cfg, encoders, writer, detector, clock, cfg.video_decoder, report), report
    except DecoderMismatch:
        return _face_rows(item, probe, cfg, encoders, writer, detector, clock, "pyav", report), report


def _face_rows(item, probe: ItemProbe, cfg: ExtractConfig, encoders: Encoders, writer, detector, clock,
               decoder: str, report: DecodeReport) -> int:
    n, dim = probe.n_frames, int(encoders.face.output_dim)
    n_faces = written = 0
    batches = iter_face_batches(item, probe, cfg.batch_size, crop_size=cfg.crop_size, detector=detector,
                                decoder=decoder, report=report, crop_numbering=cfg.crop_numbering,
                                detect_every=cfg.detect_every)
    while True:
        with clock("faces_in"):  # decoding, crop files or the detector
            batch = next(batches, None)
        if batch is None:
            break
        start = int(batch.index[0])
        if not np.array_equal(batch.index, np.arange(start, start + len(batch.index))):
            raise DataError(f"{item.video_id}: frame batches are not contiguous at frame {start}")
        feats = np.zeros((len(batch.index), dim), np.float16)
        ok = np.asarray(batch.face_ok, bool)
        if ok.any():
            with clock("face_encode"):
                feats[ok] = _to_float16(encoders.face.encode_numpy(batch.faces[ok]), "face", item.video_id)
        with clock("write"):
            writer.write("face", start, feats)
            writer.write("face_ok", start, ok)
        n_faces += int(ok.sum())
        written += len(batch.index)
        report_frames(item.video_id, len(batch.index))
    if written < n:  # the decoder gave fewer frames than the container's packets: no face there
        log.warning("%s: decoded %d of %d frames; frames %d..%d have face_ok False",
                    item.video_id, written, n, written, n - 1)
        writer.write("face", written, np.zeros((n - written, dim), np.float16))
        writer.write("face_ok", written, np.zeros(n - written, bool))
    elif written > n:
        raise DataError(f"{item.video_id}: decoded {written} frames, the container said {n}")
    return n_faces
