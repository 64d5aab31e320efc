"""`ExtractConfig`: what `emokd extract-features` resolves from defaults, a config file and flags.

Which of its values change feature values (and so are fingerprinted) is decided in
`emokd.extract.encoders.face_settings` and `audio_settings`; runtime fields (workers, device, batch size) never are.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from emokd.config import check_device_name, without_secrets
from emokd.cache.lock import STALE_AFTER_S
from emokd.cache.packing import PACK_FRAMES, SHARD_FRAMES
from emokd.constants import AUDIO_WINDOW_S, CROP_SIZE, SAMPLE_RATE
from emokd.errors import ConfigError
from emokd.index.crop_files import NUMBERINGS
from emokd.models.detectors import DEFAULT_DETECTOR, DETECTORS
from emokd.models.input_spec import AudioInput, FaceInput


AUDIO_MODES = ("per-window", "shared-trunk")
WEIGHT_PATHS = ("face_weights", "audio_weights", "detector_weights")
FACE_SOURCES = ("auto", "crops", "detector", "whole-frame")
VIDEO_DECODERS = ("pyav", "decord")       # emokd.extract.video

MODE_NAMES = {"trunk": "shared-trunk", "window": "per-window"}  # emokd.models.soundnet's spelling


def default_audio_mode(audio_encoder: str = "soundnet8") -> str:
    """SoundNet's measured default (emokd.models.soundnet); any other audio encoder encodes each
    window on its own (only SoundNet has a shared-trunk mode)."""
    if audio_encoder != "soundnet8":
        return "per-window"
    from emokd.models.soundnet import SOUNDNET_DEFAULT_MODE

    return MODE_NAMES.get(SOUNDNET_DEFAULT_MODE, SOUNDNET_DEFAULT_MODE)


@dataclass
class ExtractConfig:
    """Everything `emokd extract-features` needs. Fields marked runtime never change feature values."""

    face_encoder: str = "fer_pyemotion"  # fer_pyemotion (PyEmotion's CNN), fer_drer (needs face_weights), onnx or
                                         # torchscript (a file you bring), or a preset (docs/encoders.md)
    face_weights: str | None = None      # weights file of the face encoder (default: the weights store)
    face_layer: str | None = None        # face encoder layer taken as the embedding (default: the encoder's own)
    face_input: FaceInput = field(default_factory=FaceInput)  # preprocessing of an onnx/torchscript face model
    audio_encoder: str = "soundnet8"     # audio encoder: soundnet8, onnx or torchscript
    audio_weights: str | None = None     # weights file of the audio encoder (default: the weights store)
    audio_layer: str | None = None       # audio encoder layer (soundnet8: conv8 = 1000 objects, conv8_2 = 401 scenes)
    audio_input: AudioInput = field(default_factory=AudioInput)  # preprocessing of an onnx/torchscript audio model
    audio_mode: str = ""                 # per-window or shared-trunk; "" = SoundNet's measured default
    face_source: str = "auto"            # auto: dataset crops, else the detector; crops: crops only
                                         # (none: face_ok False); detector; whole-frame: frames are faces
    detector: str = DEFAULT_DETECTOR     # face detector where a video has no crops (docs/encoders.md)
    detector_weights: str | None = None  # MTCNN: a folder with pnet/rnet/onet.pt; blazeface, blazeface_full: a
                                         # .tflite file; blazeface_cascade: a folder with both (default: the store)
    detect_every: int = 1                # run the detector on every K-th frame of a video (and its last), faces
                                         # between interpolated (emokd/extract/keyframes.py; docs/encoders.md)
    video_decoder: str = "pyav"          # pyav (the container's own decode) or decord (checked against PyAV,
                                         # known-bad files to PyAV; docs/decisions.md)
    audio_track: int | None = None       # the N-th audio track of every video, from 0 as ffmpeg's -map 0:a:N
                                         # (default: the track marked default, else the first)
    crop_numbering: str = "1-based"      # crop file names: 1-based (Aff-Wild2: 00001.jpg is frame 0) or 0-based
    crop_size: int = CROP_SIZE           # face crop size in pixels
    sample_rate: int = SAMPLE_RATE       # audio sample rate (SoundNet runs at 22050 Hz only)
    window_s: float = AUDIO_WINDOW_S     # audio window length in seconds, ending at each frame
    face_set: str | None = None          # name of the face feature set in the cache (default <encoder>-<layer>)
    audio_set: str | None = None         # name of the audio feature set in the cache (default <encoder>-<layer>)
    # runtime
    shard_frames: int = SHARD_FRAMES     # frames per packed shard of stills and short clips (docs/cache_format.md)
    pack_frames: int = PACK_FRAMES       # items of at most this many frames are packed (0: every item alone)
    batch_size: int = 64                 # frames per encoder batch
    device: str = "auto"                 # torch device of the encoders on each worker: auto, cpu, cuda, cuda:N
    workers: int = 1                     # worker processes of the local Dask cluster
    scheduler: str | None = None         # address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786
    limit: int | None = None             # only the first N videos of the index
    # where the cache and source URLs live, and the writer lock (runtime; docs/scaling.md#object-stores)
    storage_options: dict = field(default_factory=dict, metadata={"redact": without_secrets, "help": (
        "fsspec options of the cache and of source URLs (s3: endpoint_url, anon, client_kwargs, ...); "
        "credentials are never saved")})
    scratch_dir: str | None = None       # workers download source URLs here ($VARS expanded on the worker)
    lock_expiry_s: float = STALE_AFTER_S  # a writer lock not renewed this long counts as its holder gone
    lock_wait_s: float = 0.0             # wait this long for another writer's lock before refusing

    def resolved(self) -> "ExtractConfig":
        """Defaults filled in, local weight paths made absolute (workers run anywhere), checked."""
        layer = self.audio_layer or ("conv8" if self.audio_encoder == "soundnet8" else None)
        paths = {name: os.path.abspath(os.path.expanduser(value)) for name in WEIGHT_PATHS
                 if (value := getattr(self, name)) and "://" not in value}
        cfg = dataclasses.replace(self, audio_mode=self.audio_mode or default_audio_mode(self.audio_encoder),
                                  audio_layer=layer, **paths)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.audio_mode not in AUDIO_MODES:
            raise ConfigError(f"audio_mode: {self.audio_mode!r} is not one of {list(AUDIO_MODES)}")
        if self.detector not in DETECTORS:
            raise ConfigError(f"detector: {self.detector!r} is not one of {list(DETECTORS)}")
        if self.audio_mode == "shared-trunk" and self.audio_encoder != "soundnet8":
            raise ConfigError(f"audio_mode shared-trunk: only soundnet8 has it; audio encoder "
                              f"{self.audio_encoder!r} needs --audio-mode per-window")
        if self.face_source not in FACE_SOURCES:
            raise ConfigError(f"face_source: {self.face_source!r} is not one of {list(FACE_SOURCES)}")
        if self.crop_numbering not in NUMBERINGS:
            raise ConfigError(f"crop_numbering: {self.crop_numbering!r} is not one of {list(NUMBERINGS)}")
        if self.sample_rate != SAMPLE_RATE:
            raise ConfigError(f"sample_rate: {self.sample_rate} is not supported; SoundNet runs at {SAMPLE_RATE} Hz")
        for name in ("crop_size", "batch_size", "workers", "shard_frames", "detect_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.video_decoder not in VIDEO_DECODERS:
            raise ConfigError(f"video_decoder: {self.video_decoder!r} is not one of {list(VIDEO_DECODERS)}")
        if self.audio_track is not None and int(self.audio_track) < 0:
            raise ConfigError(f"audio_track: must be >= 0 (the N-th audio track, from 0), got {self.audio_track}")
        if self.pack_frames < 0:
            raise ConfigError(f"pack_frames: must be >= 0 (0: no packing), got {self.pack_frames}")
        if self.window_s <= 0:
            raise ConfigError(f"window_s: must be > 0, got {self.window_s}")
        check_device_name(self.device)
        if self.lock_expiry_s <= 0 or self.lock_wait_s < 0:
            raise ConfigError(f"lock_expiry_s must be > 0 and lock_wait_s >= 0, got {self.lock_expiry_s}, "
                              f"{self.lock_wait_s}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit: must be >= 1, got {self.limit}")

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))




