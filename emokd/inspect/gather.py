"""Gather what `emokd inspect` draws for one cached video (see inspect_plot for the picture).

Times and flags come from the cache (what training sees); the face crops and the waveform are
produced again from the media by the same pipeline functions that extraction used (crop files, or
the decoder + detector + alignment of one frame; audio decoded onto the video's clock), so the
picture shows the inputs the encoders were given. Only the shown frames are detected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emokd.constants import CROP_SIZE
from emokd.errors import DataError
from emokd.inspect.plot import InspectData, pick_frames


def find_item(manifest, video_id: str):
    """The manifest item of `video_id`, or DataError listing a few known ids."""
    for item in manifest.items:
        if item.video_id == video_id:
            return item
    known = ", ".join(sorted(i.video_id for i in manifest.items)[:8])
    raise DataError(f"video '{video_id}' is not in the dataset (known: {known}...)")


def item_from_cache(cache, video_id: str):
    """A VideoItem rebuilt from the cache's record of the source file (no crops, no labels)."""
    from emokd.index.manifest import VideoItem, is_url

    attrs = cache.video_attrs(video_id)
    recorded = attrs.get("source") or {}
    source = recorded.get("path") or recorded.get("url")
    if not source:
        raise DataError(f"cache {cache.url}: video '{video_id}' records no source file; pass --dataset ROOT")
    if attrs.get("face_source") == "crops":
        raise DataError(f"cache {cache.url}: video '{video_id}' was extracted from crop files; pass "
                        "--dataset ROOT so that inspect can find its cropped_aligned folder")
    return VideoItem(video_id=video_id, video_path=source if is_url(source) else Path(source), crop_dir=None,
                     labels=None, split=attrs.get("split", "unlabelled"), dataset=attrs.get("dataset", "affwild2"))


def read_crop_files(crop_dir: Path, frames: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop files of the given 0-based frames through the pipeline's reader (00001.jpg = frame 0);
    a gap or an unreadable file -> not ok."""
    from emokd.extract.faces import load_crop

    crops = np.zeros((len(frames), size, size, 3), np.uint8)
    ok = np.zeros(len(frames), bool)
    for j, k in enumerate(frames):
        face = load_crop(Path(crop_dir), int(k), size)
        if face is not None:
            crops[j], ok[j] = face, True
    return crops, ok


def detector_crops(video_path: Path, info, frames: np.ndarray, size: int, detector,
                   batch_size: int = 64, video_id: str = "", decoder: str = "pyav") -> tuple[np.ndarray, np.ndarray]:
    """Crops of the given frames by the extraction's own path (`faces.detect_faces` with the item's
    `FacePicker` on the frames of `video.decode_batches`, verified and shown as a player shows them;
    `info` is the video's probe, `decoder` the one extraction used); frames are decoded in order, only
    the shown ones detected, except for a `_left` / `_right` item, whose picker follows every frame."""
    from emokd.extract.video import DecoderMismatch

    try:
        return _detector_crops(video_path, info, frames, size, detector, batch_size, video_id, decoder)
    except DecoderMismatch:
        return _detector_crops(video_path, info, frames, size, detector, batch_size, video_id, "pyav")


def _detector_crops(video_path, info, frames, size, detector, batch_size, video_id, decoder):
    from emokd.extract.faces import FacePicker, detect_faces
    from emokd.extract.video import decode_batches

    picker = FacePicker(video_id)

    wanted = {int(k): j for j, k in enumerate(frames)}
    crops = np.zeros((len(frames), size, size, 3), np.uint8)
    ok = np.zeros(len(frames), bool)
    last = int(frames.max()) if len(frames) else -1
    for start, batch in decode_batches(Path(video_path), info, info.n_frames, batch_size, decoder=decoder):
        for b, image in enumerate(batch):
            j = wanted.get(start + b)
            if j is not None or picker.side is not None:
                face = detect_faces(detector, [image], size, picker)[0]
                if face is not None and j is not None:
                    crops[j], ok[j] = face, True
        if start + len(batch) > last:
            break
    return crops, ok


def gather(cache, video_id: str, item=None, n_crops: int = 10, detector_weights=None,
           crop_size: int | None = None, device: str = "cpu") -> InspectData:
    """InspectData for `video_id`: cache arrays + labels, crops and audio from the media file (a
    source URL is downloaded to scratch for the picture, as extraction does)."""
    from emokd.extract.source_files import local_source

    if not cache.is_complete(video_id):
        some = ", ".join(cache.video_ids()[:8])
        raise DataError(f"cache {cache.url}: no complete video '{video_id}' (complete: {some}...)")
    item = item if item is not None else item_from_cache(cache, video_id)
    with local_source(item, cache.storage_options) as (local, _identity):
        return _gather(cache, video_id, local, n_crops, detector_weights, crop_size, device)


def _gather(cache, video_id: str, item, n_crops: int, detector_weights, crop_size: int | None,
            device: str) -> InspectData:
    from emokd.extract.audio import load_audio
    from emokd.index.probe import probe_video

    attrs = cache.video_attrs(video_id)
    arrays = cache.read_video(video_id, ["pts", "face_ok", "audio_ok"])
    pts = np.asarray(arrays["pts"], np.float64)
    n = len(pts)
    size = int(crop_size or cache.settings.get("crop_size") or cache.config.get("crop_size") or CROP_SIZE)
    notes = [f"face source: {attrs.get('face_source', '?')}", f"pts source: {attrs.get('pts_source', '?')}"]
    frame_end = np.append(pts[1:], pts[-1] + 1.0 / float(attrs.get("fps") or 30.0)) if n else pts
    signal = None
    if item.video_path is not None:
        if not Path(item.video_path).is_file():
            raise DataError(f"{item.video_path}: source video of '{video_id}' not found; pass --dataset ROOT")
        info = probe_video(item.video_path)
        if int(info.n_frames) != n:
            raise DataError(f"{item.video_path}: has {info.n_frames} frames, the cache holds {n} for "
                            f"'{video_id}'; the file changed since extraction")
        frame_end = np.asarray(info.frame_end, np.float64)
        track = load_audio(item.video_path, info, track=(attrs.get("audio") or {}).get("track"))
        signal = np.asarray(track.signal, np.float32) if track.has_audio else None
        if signal is None:
            notes.append("no audio track")
    shown = pick_frames(n, n_crops)
    if attrs.get("face_source") == "crops" and item.crop_dir is not None:
        crops, ok = read_crop_files(item.crop_dir, shown, size)
    elif attrs.get("face_source") == "detector" and item.video_path is not None:
        from emokd.models.detectors import build_detector, detector_name
        from emokd.models.device import resolve_device

        detector = build_detector(detector_name(cache.settings.get("face_detector")), detector_weights,
                                  device=str(resolve_device(device)))
        decoder = "decord" if (attrs.get("decoding") or {}).get("decoder") == "decord" else "pyav"
        crops, ok = detector_crops(item.video_path, info, shown, size, detector, video_id=video_id, decoder=decoder)
    else:
        crops, ok = np.zeros((len(shown), size, size, 3), np.uint8), np.zeros(len(shown), bool)
        notes.append("no crops available")
    labels = None
    if cache.has_labels(video_id):
        stored = cache.read_labels(video_id)
        labels = {k: np.asarray(stored[k]) for k in ("va", "expr", "au")}
        notes.append(f"labels: split {stored.get('split', '?')}")
    return InspectData(video_id=video_id, pts=pts, frame_end=frame_end, crop_index=shown, crops=crops,
                       crop_face_ok=ok, signal=signal, audio_ok=np.asarray(arrays["audio_ok"], bool),
                       face_ok=np.asarray(arrays["face_ok"], bool), labels=labels, notes=notes)
