"""Shards read several at once for training: results in order, bounded in flight, errors raised,
and the same frames as reading one shard after another."""

import threading
import time

import numpy as np
import pytest

from emokd.errors import CacheError
from emokd.train import reading
from emokd.train.data import load_frame_data
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache


def test_in_order_keeps_order_and_bounds_calls_in_flight():
    lock, running, peak = threading.Lock(), [0], [0]

    def slow(i):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02 * ((7 * i) % 5))       # later items often finish first
        with lock:
            running[0] -= 1
        return i * i

    assert list(reading.in_order(slow, range(20), threads=4)) == [i * i for i in range(20)]
    assert 2 <= peak[0] <= 4
    assert list(reading.in_order(slow, range(5), threads=1)) == [0, 1, 4, 9, 16]


def test_in_order_raises_the_first_error_in_order():
    def fail_at_3(i):
        if i == 3:
            raise CacheError("shard 3 is gone")
        return i

    results = reading.in_order(fail_at_3, range(10), threads=4)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(CacheError, match="shard 3"):
        next(results)


def test_threaded_load_equals_one_shard_after_another(tmp_path, monkeypatch):
    spec = SyntheticSpec(n_videos=7, frames_per_video=30, face_dim=4, audio_dim=3, no_face=0.3,
                         validation_fraction=0.3, seed=11)
    cache = write_synthetic_cache(str(tmp_path / "c.zarr"), spec)
    assert len(cache.shard_keys()) == 7
    threaded = load_frame_data(cache, ["train"], window=3, stride=2)
    monkeypatch.setattr(reading, "READ_THREADS", 1)
    serial = load_frame_data(cache, ["train"], window=3, stride=2)
    assert threaded.video_ids == serial.video_ids and len(serial.video_ids) >= 4
    for name in ("face", "audio"):
        assert np.array_equal(getattr(threaded, name).numpy(), getattr(serial, name).numpy()), name
    for name in ("face_ok", "expr", "au", "mtl"):
        assert np.array_equal(getattr(threaded, name), getattr(serial, name)), name
    assert np.array_equal(threaded.va, serial.va, equal_nan=True)
    assert threaded.video_splits == serial.video_splits
