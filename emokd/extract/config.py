"""`ExtractConfig`: what `emokd extract-features` resolves from defaults, a config file and flags.

Which of its values change feature values (and so are fingerprinted) is decided in
`emokd.extract.encoders.fingerprint_settings`; runtime fields (workers, device, batch size) never are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from emokd.config import check_device_name
from emokd.constants import AUDIO_WINDOW_S, CROP_SIZE, SAMPLE_RATE
from emokd.errors import ConfigError

AUDIO_MODES = ("per-window", "shared-trunk")
FACE_SOURCES = ("auto", "crops", "detector", "whole-frame")

MODE_NAMES = {"trunk": "shared-trunk", "window": "per-window"}  # emokd.models.soundnet's spelling


def default_audio_mode() -> str:
    """The encoders issue measures per-window vs shared-trunk and sets the default there."""
    from emokd.models.soundnet import SOUNDNET_DEFAULT_MODE

    return MODE_NAMES.get(SOUNDNET_DEFAULT_MODE, SOUNDNET_DEFAULT_MODE)


@dataclass
class ExtractConfig:
    """Everything `emokd extract-features` needs. Fields marked runtime never change feature values."""

    face_encoder: str = "fer_pyemotion"  # fer_pyemotion (PyEmotion's CNN) or fer_drer (needs face_weights)
    face_weights: str | None = None      # weights file of the face encoder (default: the weights store)
    face_layer: str | None = None        # face encoder layer taken as the embedding (default: the encoder's own)
    audio_encoder: str = "soundnet8"     # audio encoder
    audio_weights: str | None = None     # weights file of the audio encoder (default: the weights store)
    audio_layer: str = "conv8"           # audio encoder layer (conv8: 1000 objects, conv8_2: 401 scenes)
    audio_mode: str = ""                 # per-window or shared-trunk; "" = SoundNet's measured default
    face_source: str = "auto"            # auto: dataset crops, else the detector; crops: crops only
                                         # (none: face_ok False); detector; whole-frame: frames are faces
    detector_weights: str | None = None  # folder with MTCNN pnet.pt, rnet.pt, onet.pt (default: the weights store)
    crop_size: int = CROP_SIZE           # face crop size in pixels
    sample_rate: int = SAMPLE_RATE       # audio sample rate (SoundNet runs at 22050 Hz only)
    window_s: float = AUDIO_WINDOW_S     # audio window length in seconds, ending at each frame
    # runtime
    batch_size: int = 64                 # frames per encoder batch
    device: str = "auto"                 # torch device of the encoders on each worker: auto, cpu, cuda, cuda:N
    workers: int = 1                     # worker processes of the local Dask cluster
    scheduler: str | None = None         # address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786
    limit: int | None = None             # only the first N videos of the index

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
        check_device_name(self.device)
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit: must be >= 1, got {self.limit}")

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))




