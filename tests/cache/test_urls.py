"""Caches on fsspec URLs, and several processes writing one store at once."""

import os
import sys

import numpy as np
import pytest

from cache_support import ENCODERS, SETTINGS, run_processes, video_values, write_video
from emokd.cache import FeatureCache
from emokd.errors import CacheError


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_cache_on_a_url(tmp_path, scheme):
    url = f"memory://emokd-test-{os.getpid()}/c.zarr" if scheme == "memory" else f"file://{tmp_path}/c.zarr"
    cache = FeatureCache.create(url, SETTINGS, {}, ENCODERS)
    values = video_values(9, seed=1)
    write_video(cache, "afew_va/007", values, commit=False)
    assert FeatureCache.open(url).video_ids() == []
    write_video(cache, "afew_va/007", values)
    cache.write_labels("afew_va/007", expr=[1] * 9, split="train")
    reader = FeatureCache.open(url)
    assert reader.video_ids() == ["afew_va/007"] and reader.verify() == []
    np.testing.assert_array_equal(reader.read_video("afew_va/007")["audio"], values["audio"])
    assert (reader.read_labels("afew_va/007")["expr"] == 1).all()
    assert reader.info()["size_bytes"] > 9 * 36
    with pytest.raises(CacheError, match="fer_pyemotion-fc1: settings.crop_size: cache has 112, requested 96"):
        FeatureCache.create(url, {**SETTINGS, "crop_size": 96}, {}, ENCODERS)
    if scheme == "file":
        assert FeatureCache.open(tmp_path / "c.zarr").video_ids() == ["afew_va/007"]


def _writer_process(url: str, ids: list[str]) -> None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
    cache = FeatureCache.open(url, mode="r+")
    for vid in ids:
        seed = int(vid.split("/")[-1])
        write_video(cache, vid, video_values(300 + seed, seed=seed), batch=13)
        cache.write_labels(vid, expr=np.full(300 + seed, seed % 8), split="train")
        cache.record_failure(f"failed/{seed}", f"error {seed}")


def test_two_processes_write_one_store_without_corruption(tmp_path):
    url = str(tmp_path / "c.zarr")
    FeatureCache.create(url, SETTINGS, {}, ENCODERS)
    ids = [f"ds/{i}" for i in range(1, 9)]
    run_processes(_writer_process, [(url, ids[k::2]) for k in range(2)])
    cache = FeatureCache.open(url)
    assert cache.video_ids() == ids and cache.verify() == []
    assert cache.failures() == {f"failed/{i}": f"error {i}" for i in range(1, 9)}
    for vid in ids:
        seed = int(vid.split("/")[-1])
        expected = video_values(300 + seed, seed=seed)
        got = cache.read_video(vid)
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=f"{vid} {name}")
        assert (cache.read_labels(vid)["expr"] == seed % 8).all()
