"""Extraction settings and the frozen encoders of one worker process.

`ExtractConfig` is what `emokd extract-features` resolves from defaults, a config file and flags.
`face_settings` and `audio_settings` are the values of it that change the features of each kind:
`feature_sets` hashes each with its encoder's record into that set's fingerprint (emokd/cache/sets.py);
`fingerprint_settings` is both kinds and both records in one dict, which every worker compares with
the driver's before it writes.
`load_encoders` builds the encoders once per process and keeps them for every later task.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass

from emokd.extract.config import ExtractConfig
from emokd.models.input_spec import given

log = logging.getLogger(__name__)


@dataclass
class Encoders:
    face: object
    audio: object
    detector: object | None


_LOADED: dict[tuple, Encoders] = {}


def _encoder_key(cfg: ExtractConfig, device: str) -> tuple:
    return (cfg.face_encoder, cfg.face_weights, cfg.face_layer, json.dumps(given(cfg.face_input), sort_keys=True),
            cfg.audio_encoder, cfg.audio_weights, cfg.audio_layer, json.dumps(given(cfg.audio_input), sort_keys=True),
            cfg.window_s, cfg.face_source, cfg.detector, cfg.detector_weights, device)


def load_encoders(cfg: ExtractConfig, device: str | None = None) -> Encoders:
    """The frozen encoders for `cfg`, built once per process and reused by every later task."""
    import torch

    from emokd.models.device import resolve_device
    from emokd.models.encoder import build_encoder

    device = str(resolve_device(device or cfg.device))
    key = _encoder_key(cfg, device)
    if key not in _LOADED:
        started = time.perf_counter()
        torch.set_num_threads(1)
        face = _built("face", cfg.face_weights, build_encoder, cfg.face_encoder, weights=cfg.face_weights,
                      layer=cfg.face_layer, device=device, kind="face", input_spec=given(cfg.face_input) or None)
        audio = _built("audio", cfg.audio_weights, build_encoder, cfg.audio_encoder, weights=cfg.audio_weights,
                       layer=cfg.audio_layer, device=device, window_s=cfg.window_s, kind="audio",
                       input_spec=given(cfg.audio_input) or None)
        detector = None
        if cfg.face_source in ("auto", "detector"):
            from emokd.models.detectors import build_detector

            detector = _built("face detector", cfg.detector_weights, build_detector, cfg.detector,
                              cfg.detector_weights, device=device)
        _LOADED.clear()  # one configuration per worker process at a time
        _LOADED[key] = Encoders(face, audio, detector)
        log.info("built encoders %s + %s on %s in %.1f s (process %d)", cfg.face_encoder, cfg.audio_encoder,
                 device, time.perf_counter() - started, os.getpid())
    return _LOADED[key]


def _built(what: str, weights_file, build, /, *args, **kwargs):
    """`build(*args, **kwargs)`; an unexpected error while reading a user's weights file becomes a
    WeightsError that names the file (a text file as weights raised KeyError deep in a loader)."""
    from emokd.errors import EmokdError, WeightsError

    try:
        return build(*args, **kwargs)
    except EmokdError:
        raise
    except Exception as exc:
        if weights_file is None:
            raise
        raise WeightsError(f"{weights_file}: cannot load it as {what} weights ({type(exc).__name__}: {exc}); "
                           "check the file and its format (docs/encoders.md)") from exc


def detector_record(detector) -> dict | None:
    if detector is None:
        return None
    if hasattr(detector, "record"):
        return detector.record()
    return {"name": type(detector).__name__, "weights_sha256": getattr(detector, "weights_sha256", None)}


def face_settings(cfg: ExtractConfig, encoders: Encoders) -> dict:
    """The extraction settings that change face features (hashed into the face set's fingerprint).
    `detect_every` is recorded only when it is not 1, so that caches made before it existed (every
    frame detected) keep their fingerprints (docs/cache_format.md)."""
    settings = {"face_source": cfg.face_source, "face_detector": detector_record(encoders.detector),
                "crop_size": int(cfg.crop_size), "crop_numbering": cfg.crop_numbering}
    if int(cfg.detect_every) != 1:
        settings["detect_every"] = int(cfg.detect_every)
    return settings


def audio_settings(cfg: ExtractConfig) -> dict:
    """The extraction settings that change audio features (hashed into the audio set's fingerprint)."""
    return {"sample_rate": int(cfg.sample_rate), "window_s": float(cfg.window_s), "audio_mode": cfg.audio_mode,
            "audio_track": cfg.audio_track}


def feature_sets(cfg: ExtractConfig, encoders: Encoders, config: dict | None = None) -> list:
    """The cache's feature sets this run fills: [face set, audio set], each with the settings of
    its kind (emokd/cache/sets.py) and the run's config (not hashed)."""
    from emokd.cache.sets import make_set

    return [make_set(encoders.face.record(), face_settings(cfg, encoders), cfg.face_set, config),
            make_set(encoders.audio.record(), audio_settings(cfg), cfg.audio_set, config)]


def fingerprint_settings(cfg: ExtractConfig, encoders: Encoders) -> dict:
    """Every value that changes feature values: both encoder records and the settings of both kinds
    (what a worker must agree on with the driver; each set's fingerprint hashes its own part)."""
    return {"face_encoder": encoders.face.record(), "audio_encoder": encoders.audio.record(),
            **face_settings(cfg, encoders), **audio_settings(cfg)}
