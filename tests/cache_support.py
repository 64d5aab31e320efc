"""Small helpers shared by the cache tests: encoder records, settings and a video filler."""

import numpy as np

from emokd.cache.schema import video_arrays

ENCODERS = [
    {"name": "fer_pyemotion", "kind": "face", "output_dim": 8, "layer": "fc1",
     "input_spec": {"size": 48, "channels": 1}, "weights_sha256": "a" * 64},
    {"name": "soundnet8", "kind": "audio", "output_dim": 5, "layer": "conv8",
     "input_spec": {"sample_rate": 22050, "window_s": 10.0}, "weights_sha256": "b" * 64},
]
SETTINGS = {"crop_size": 112, "sample_rate": 22050, "window_s": 10.0, "audio_mode": "shared"}
ARRAY_SPECS = video_arrays(ENCODERS)  # what begin_video creates for these encoders


def video_values(n: int, seed: int) -> dict:
    """Arrays of one video whose values are exact in float16 (multiples of 1/8 below 256)."""
    rng = np.random.default_rng(seed)
    dims = {name: spec.dim for name, spec in ARRAY_SPECS.items() if spec.is_feature}
    return {"face": (rng.integers(-800, 800, (n, dims["face"])) / 8).astype(np.float16),
            "audio": (rng.integers(-800, 800, (n, dims["audio"])) / 8).astype(np.float16),
            "face_ok": rng.random(n) < 0.8, "audio_ok": np.arange(n) > 2,
            "pts": np.arange(n) / 30.0}


def write_video(cache, video_id: str, values: dict, batch: int = 7, commit: bool = True, attrs=None):
    n = len(values["pts"])
    writer = cache.begin_video(video_id, n, attrs or {"fps": 30.0})
    for start in range(0, n, batch):
        for name, array in values.items():
            writer.write(name, start, array[start:start + batch])
    if commit:
        writer.commit()
    return writer
