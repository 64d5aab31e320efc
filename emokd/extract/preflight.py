"""Settings checked once, up front, before a cache is created or replaced (docs/safety.md).

A setting that no video can satisfy (an audio window too short for the encoder's layer, a crop size
the face encoder cannot take, a device this machine lacks, weights that do not load) used to be
found once per video, after `--overwrite` had deleted a good cache. `check_settings` runs the
driver's encoders once on a silent window and a blank crop of the configured sizes, so such a
setting is refused before anything is written; `check_crop_numbering` refuses crop folders whose
names contradict the numbering rule (a stat per folder, no listing).
"""

from __future__ import annotations

import numpy as np

from emokd.errors import ConfigError, DataError
from emokd.extract.audio import AudioTrack
from emokd.extract.config import ExtractConfig
from emokd.extract.timing import audio_features
from emokd.index.crop_files import numbering_refusal, zero_crop


def _check_device(cfg: ExtractConfig) -> None:
    """The device must exist here when the workers run here (a remote cluster checks its own)."""
    if not cfg.scheduler:
        from emokd.models.device import resolve_device

        resolve_device(cfg.device)


def _try(setting: str, what: str, run):
    try:
        return run()
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"{setting}: the {what} cannot run with it: {exc}") from None


def check_settings(cfg: ExtractConfig, encoders) -> None:
    """ConfigError naming the setting when the encoders cannot run with `cfg` at all."""
    _check_device(cfg)
    n = cfg.window_samples
    track = AudioTrack(np.zeros(n, np.float32), n_valid=n, has_audio=True, sample_rate=cfg.sample_rate)
    feats = _try(f"window_s {cfg.window_s} (audio_layer {encoders.audio.layer}, audio_mode {cfg.audio_mode})",
                 f"audio encoder {encoders.audio.name}",
                 lambda: audio_features(encoders.audio, track, np.array([n]), n, cfg.audio_mode, 1))
    if np.shape(feats) != (1, int(encoders.audio.output_dim)):
        raise ConfigError(f"audio encoder {encoders.audio.name}: gave features of shape {np.shape(feats)} for "
                          f"one window, its record says {encoders.audio.output_dim}-d")
    crop = np.zeros((1, cfg.crop_size, cfg.crop_size, 3), np.uint8)
    faces = _try(f"crop_size {cfg.crop_size}", f"face encoder {encoders.face.name}",
                 lambda: encoders.face.encode_numpy(crop))
    if np.shape(faces) != (1, int(encoders.face.output_dim)):
        raise ConfigError(f"face encoder {encoders.face.name}: gave features of shape {np.shape(faces)} for "
                          f"one crop, its record says {encoders.face.output_dim}-d")


def check_crop_numbering(items: list, numbering: str, face_source: str) -> None:
    """DataError naming the folders when 1-based crop folders hold a crop numbered 0."""
    if numbering != "1-based" or face_source not in ("auto", "crops"):
        return
    bad = [found for item in items if item.crop_dir is not None
           and (found := zero_crop(item.crop_dir)) is not None]
    if bad:
        raise DataError(numbering_refusal(bad))
