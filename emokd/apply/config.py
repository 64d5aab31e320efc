"""`PredictVideoConfig`: the settings of `emokd predict-video` (no torch: the CLI builds its flags from it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from emokd.config import without_secrets


@dataclass
class PredictVideoConfig:
    """Settings of one `emokd predict-video` call (saved as predict_video.yaml in --out)."""

    videos: str = ""                     # a video file, or a folder searched for video files
    run: str = ""                        # the trained run folder
    out: str = ""                        # folder for the per-video CSVs (and the ABAW file, the pictures)
    cache: str | None = None             # feature cache to keep and reuse (default: a temporary one)
    smooth: float = 0.0                  # centred temporal filter over this many seconds (0: none)
    checkpoint: str = "best.pt"          # best.pt or last.pt of the run
    abaw: bool = False                   # also write the ABAW MTL submission file
    picture: bool = False                # also draw the inspect picture of each video
    device: str = "auto"                 # torch device of the encoders and the model: auto, cpu, cuda, cuda:N
    workers: int = 1                     # extraction worker processes
    batch_size: int = 64                 # frames per encoder batch
    face_source: str | None = None       # how faces are found (default: the run's; its crops -> detector)
    detector_weights: str | None = None  # face detector weights folder (default: the weights store)
    storage_options: dict = field(default_factory=dict, metadata={"redact": without_secrets, "help": (
        "fsspec options of a --cache on an object store (s3: endpoint_url, ...); credentials are never saved")})
    extract: dict = field(default_factory=dict)   # the resolved extraction config used (written by emokd)
