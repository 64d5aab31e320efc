"""Extraction settings and the frozen encoders of one worker process (issue 4).

`ExtractConfig` is what `emokd extract-features` resolves from defaults, a config file and flags.
`fingerprint_settings` is every value of it that changes feature values: the cache hashes it.
`load_encoders` builds the encoders once per process and keeps them for every later task.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..constants import AUDIO_WINDOW_S, CROP_SIZE, SAMPLE_RATE
from ..errors import ConfigError

AUDIO_MODES = ("per-window", "shared-trunk")
FACE_SOURCES = ("auto", "crops", "detector", "whole-frame")

MODE_NAMES = {"trunk": "shared-trunk", "window": "per-window"}  # emokd.models.soundnet's spelling


def default_audio_mode() -> str:
    """The encoders issue measures per-window vs shared-trunk and sets the default there."""
    from ..models.soundnet import SOUNDNET_DEFAULT_MODE

    return MODE_NAMES.get(SOUNDNET_DEFAULT_MODE, SOUNDNET_DEFAULT_MODE)


@dataclass
class ExtractConfig:
    """Everything `emokd extract-features` needs. Fields marked runtime never change feature values."""

    face_encoder: str = "fer_default"
    face_weights: str | None = None
    face_layer: str | None = None
    audio_encoder: str = "soundnet8"
    audio_weights: str | None = None
    audio_layer: str = "conv8"
    audio_mode: str = ""  # "" = emokd.models.soundnet.SOUNDNET_DEFAULT_MODE
    face_source: str = "auto"  # crops where the dataset has them, the face detector otherwise;
    # "crops": dataset crops only (no crops -> face_ok False); "whole-frame": frames are faces already
    detector_weights: str | None = None
    crop_size: int = CROP_SIZE
    sample_rate: int = SAMPLE_RATE
    window_s: float = AUDIO_WINDOW_S
    # runtime
    batch_size: int = 64
    device: str = "cpu"
    workers: int = 1
    scheduler: str | None = None
    limit: int | None = None

    def resolved(self) -> "ExtractConfig":
        cfg = dataclasses.replace(self, audio_mode=self.audio_mode or default_audio_mode())
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.audio_mode not in AUDIO_MODES:
            raise ConfigError(f"audio_mode: {self.audio_mode!r} is not one of {list(AUDIO_MODES)}")
        if self.face_source not in FACE_SOURCES:
            raise ConfigError(f"face_source: {self.face_source!r} is not one of {list(FACE_SOURCES)}")
        if self.sample_rate != SAMPLE_RATE:
            raise ConfigError(f"sample_rate: {self.sample_rate} is not supported; SoundNet runs at {SAMPLE_RATE} Hz")
        for name in ("crop_size", "batch_size", "workers"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.window_s <= 0:
            raise ConfigError(f"window_s: must be > 0, got {self.window_s}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit: must be >= 1, got {self.limit}")

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))


@dataclass
class Encoders:
    face: object
    audio: object
    detector: object | None


_LOADED: dict[tuple, Encoders] = {}
LOAD_COUNT = {"builds": 0}  # how many times this process built encoders (tests: once per worker)


def _encoder_key(cfg: ExtractConfig, device: str) -> tuple:
    return (cfg.face_encoder, cfg.face_weights, cfg.face_layer, cfg.audio_encoder, cfg.audio_weights,
            cfg.audio_layer, cfg.face_source, cfg.detector_weights, device)


def load_encoders(cfg: ExtractConfig, device: str | None = None) -> Encoders:
    """The frozen encoders for `cfg`, built once per process and reused by every later task."""
    import torch

    from ..models.encoder import build_encoder

    device = device or cfg.device
    key = _encoder_key(cfg, device)
    if key not in _LOADED:
        torch.set_num_threads(1)
        face = build_encoder(cfg.face_encoder, weights=cfg.face_weights, layer=cfg.face_layer, device=device)
        audio = build_encoder(cfg.audio_encoder, weights=cfg.audio_weights, layer=cfg.audio_layer,
                              device=device)
        detector = None
        if cfg.face_source in ("auto", "detector"):
            from ..models.face_detector import build_face_detector

            detector = build_face_detector(cfg.detector_weights, device=device)
        _LOADED.clear()  # one configuration per worker process at a time
        _LOADED[key] = Encoders(face, audio, detector)
        LOAD_COUNT["builds"] += 1
    return _LOADED[key]


def encoder_builds() -> int:
    """How many times this process built encoders (once per worker process in a healthy run)."""
    return LOAD_COUNT["builds"]


def detector_record(detector) -> dict | None:
    if detector is None:
        return None
    if hasattr(detector, "record"):
        return detector.record()
    return {"name": type(detector).__name__, "weights_sha256": getattr(detector, "weights_sha256", None)}


def fingerprint_settings(cfg: ExtractConfig, encoders: Encoders) -> dict:
    """Every value that changes feature values; the cache hashes this dict into its fingerprint."""
    return {
        "face_encoder": encoders.face.record(),
        "audio_encoder": encoders.audio.record(),
        "face_source": cfg.face_source,
        "face_detector": detector_record(encoders.detector),
        "crop_size": int(cfg.crop_size),
        "sample_rate": int(cfg.sample_rate),
        "window_s": float(cfg.window_s),
        "audio_mode": cfg.audio_mode,
    }


def cache_arrays(encoders: Encoders) -> dict:
    """The per-video arrays of DESIGN §5, as `FeatureCache.begin_video` wants them."""
    return {
        "face": (int(encoders.face.output_dim), "float16"),
        "audio": (int(encoders.audio.output_dim), "float16"),
        "face_ok": (None, "bool"),
        "audio_ok": (None, "bool"),
        "pts": (None, "float64"),
    }
