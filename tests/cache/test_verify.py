"""`FeatureCache.verify` finds each kind of defect; `info` counts what a cache holds."""

import numpy as np
import pytest

from cache_support import ENCODERS, SETTINGS, video_values, write_video
from emokd.cache import FeatureCache


@pytest.fixture
def cache(tmp_path):
    cache = FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {"workers": 1}, ENCODERS)
    write_video(cache, "a", video_values(10, seed=1))
    write_video(cache, "b/c", video_values(4, seed=2))
    cache.write_labels("a", va=np.zeros((10, 2)), expr=[1] * 7, split="train")
    cache.write_labels("b/c", au=np.ones((4, 12)), split="validation")
    return cache


def test_a_sound_cache_has_no_defect(cache):
    assert cache.verify() == []


def test_nan_in_features_is_found_with_its_frame(cache):
    cache.root["videos/a/audio"][6, 2] = np.nan
    cache.root["videos/a/audio"][8, 0] = np.inf
    assert cache.verify() == ["video 'a': array 'audio' has 2 NaN/inf value(s), first at frame 6"]


def test_a_lost_chunk_reads_as_nan_and_is_found(cache):
    import shutil
    shutil.rmtree(f"{cache.url}/videos/a/face/c")
    assert cache.verify() == ["video 'a': array 'face' lost 1 of its 1 chunk files"]


def test_wrong_shape_dtype_and_missing_arrays_are_found(cache):
    group = cache.root["videos/b~2Fc"]
    del group["face"]
    group.create_array("face", shape=(4, 9), dtype="float32", fill_value=0.0)
    del group["pts"]
    group.create_array("face_ok", shape=(4,), dtype="int8", fill_value=0, overwrite=True)
    assert sorted(cache.verify()) == sorted([
        "video 'b/c': array 'face' has shape (4, 9), expected (4, 8)",
        "video 'b/c': array 'face' has dtype float32, expected float16",
        "video 'b/c': array 'face_ok' has dtype int8, expected bool",
        "video 'b/c': array 'pts' is missing"])


def test_labels_out_of_range_orphans_and_incomplete_videos_are_found(cache):
    cache.root["labels/a/expr"][3] = 9
    cache.root["labels/b~2Fc/va"][0] = [2.0, 0.0]
    cache.root["videos/b~2Fc"].attrs["status"] = "writing"
    problems = cache.verify()
    assert "labels of 'a': expr outside -1..7 at frame 3: 9" in problems
    assert "video 'b/c': incomplete (status 'writing'); re-run extract-features to redo it" in problems
    assert len(problems) == 2  # the unfinished video's labels are redone with it, not checked
    cache.delete_video("b/c")
    assert "labels of 'b/c': the video is not in the cache (orphan labels)" in cache.verify()


def test_decreasing_pts_is_found(cache):
    cache.root["videos/a/pts"][5] = 0.0
    assert cache.verify() == ["video 'a': pts decreases at frame 5"]


def test_info_counts_videos_frames_labels_and_bytes(cache):
    cache.record_failure("broken", "broken.mp4: moov atom not found")
    cache.begin_video("half", 3)
    info = FeatureCache.open(cache.url).info()
    assert info["videos"] == 2 and info["frames"] == 14
    assert info["incomplete"] == ["half"]
    assert info["failures"] == {"broken": "broken.mp4: moov atom not found"}
    assert info["feature_dims"] == {"face": 8, "audio": 5}
    assert [e["name"] for e in info["encoders"]] == ["fer_pyemotion", "soundnet8"]
    assert info["labels"] == {"train": {"videos": 1, "frames": 10, "va": 10, "expr": 7, "au": 0},
                              "validation": {"videos": 1, "frames": 4, "va": 0, "expr": 0, "au": 4}}
    # features: 14 frames x (8 + 5) float16 + 2 bools + 1 float64 = 14 x 36 bytes, plus metadata
    assert 14 * 36 < info["size_bytes"] < 14 * 36 + 40_000
    assert info["config"] == {"workers": 1} and info["settings"]["window_s"] == 10
