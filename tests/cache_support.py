"""Small helpers shared by the cache tests: encoder records, settings, item fillers."""

import numpy as np

from emokd.cache import ItemSpec
from emokd.cache.schema import FEATURE_DTYPE

ENCODERS = [
    {"name": "fer_pyemotion", "kind": "face", "output_dim": 8, "layer": "fc1",
     "input_spec": {"size": 48, "channels": 1}, "weights_sha256": "a" * 64},
    {"name": "soundnet8", "kind": "audio", "output_dim": 5, "layer": "conv8",
     "input_spec": {"sample_rate": 22050, "window_s": 10.0}, "weights_sha256": "b" * 64},
]
SETTINGS = {"crop_size": 112, "sample_rate": 22050, "window_s": 10.0, "audio_mode": "shared"}
FACE_SET, AUDIO_SET = "fer_pyemotion-fc1", "soundnet8-conv8"   # the default set names of ENCODERS
DTYPES = {"face": FEATURE_DTYPE, "audio": FEATURE_DTYPE, "face_ok": np.dtype(bool),
          "audio_ok": np.dtype(bool), "pts": np.dtype(np.float64)}


def video_values(n: int, seed: int, face_dim: int = 8, audio_dim: int = 5) -> dict:
    """Arrays of one item whose values are exact in float16 (multiples of 1/8 below 256)."""
    rng = np.random.default_rng(seed)
    return {"face": (rng.integers(-800, 800, (n, face_dim)) / 8).astype(np.float16),
            "audio": (rng.integers(-800, 800, (n, audio_dim)) / 8).astype(np.float16),
            "face_ok": rng.random(n) < 0.8, "audio_ok": np.arange(n) > 2,
            "pts": np.arange(n) / 30.0}


def fill_item(writer, values: dict, batch: int = 7) -> None:
    n = len(values["pts"])
    for start in range(0, n, batch):
        for name, array in values.items():
            writer.write(name, start, array[start:start + batch])


def write_video(cache, video_id: str, values: dict, batch: int = 7, commit: bool = True, attrs=None):
    """One item alone in its shard (how long videos are stored)."""
    writer = cache.begin_video(video_id, len(values["pts"]), attrs or {"fps": 30.0})
    fill_item(writer, values, batch)
    if commit:
        writer.commit()
    return writer


def write_packed(cache, key: str, items: dict, commit: bool = True, labels: dict | None = None):
    """Several items in one shard `key`: {item id: values}; `labels` {item id: ItemLabels}."""
    writer = cache.begin_shard(key, [ItemSpec(i, len(v["pts"]), dataset=i.split("/")[0], attrs={"fps": 25.0})
                                     for i, v in items.items()])
    for item_id, values in items.items():
        fill_item(writer.item(item_id), values)
        if labels and item_id in labels:
            writer.item(item_id).write_labels(labels[item_id])
    if commit:
        writer.commit()
    return writer


def run_processes(target, args_list: list[tuple], timeout: float = 120) -> None:
    """Run `target(*args)` for each args in fresh (spawned) processes at once; each must exit 0."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=target, args=args) for args in args_list]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout)
        assert worker.exitcode == 0
