"""`FeatureCache.verify` finds each kind of defect; `info` counts what a cache holds."""

import numpy as np
import pytest

from cache_support import AUDIO_SET, ENCODERS, FACE_SET, SETTINGS, video_values, write_video
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
    cache.root[f"shards/a/{AUDIO_SET}"][6, 2] = np.nan
    cache.root[f"shards/a/{AUDIO_SET}"][8, 0] = np.inf
    assert cache.verify() == [f"shard 'a': array '{AUDIO_SET}' has 2 NaN/inf value(s), first at item 'a' frame 6"]


def test_a_lost_chunk_reads_as_nan_and_is_found(cache):
    import shutil
    shutil.rmtree(f"{cache.url}/shards/a/{FACE_SET}/c")
    assert cache.verify() == [f"shard 'a': array '{FACE_SET}' lost 1 of its 1 chunk files"]
    assert cache.video_defects("a") == cache.verify()


def test_wrong_shape_dtype_and_missing_arrays_are_found(cache):
    group = cache.root["shards/b~2Fc"]
    attrs = dict(group[FACE_SET].attrs)
    del group[FACE_SET]
    group.create_array(FACE_SET, shape=(4, 9), dtype="float32", fill_value=0.0, attributes=attrs)
    del group["pts"]
    group.create_array(FACE_SET + ".ok", shape=(4,), dtype="int8", fill_value=0, overwrite=True)
    assert sorted(cache.verify()) == sorted([
        f"shard 'b~2Fc': array '{FACE_SET}' has shape (4, 9), expected (4, 8)",
        f"shard 'b~2Fc': array '{FACE_SET}' has dtype float32, expected float16",
        f"shard 'b~2Fc': array '{FACE_SET}.ok' has dtype int8, expected bool",
        "shard 'b~2Fc': array 'pts' is missing"])


def test_labels_out_of_range_and_incomplete_shards_are_found(cache):
    cache.root["shards/a/labels/expr"][3] = 9
    cache.root["shards/b~2Fc/labels/va"][0] = [2.0, 0.0]
    cache.root["shards/b~2Fc"].attrs["status"] = "writing"
    problems = cache.verify()
    assert "labels of shard 'a': expr outside -1..7 at frame 3: 9" in problems
    assert "shard 'b~2Fc': incomplete (status 'writing'); re-run extract-features to redo it" in problems
    assert len(problems) == 2  # the unfinished shard's labels are redone with it, not checked
    cache.root["shards/a/labels"].attrs["status"] = "writing"
    assert "labels of shard 'a': incomplete (an interrupted relabel); run `emokd cache relabel` again" in cache.verify()


def test_a_set_not_yet_extracted_or_written_with_other_settings_is_found(cache):
    FeatureCache.create(cache.url, SETTINGS, {}, [dict(ENCODERS[0], layer="fc2")])
    assert sorted(cache.verify()) == [
        f"shard '{k}': feature set 'fer_pyemotion-fc2' not extracted here yet (run extract-features with it)"
        for k in ("a", "b~2Fc")]
    cache.root[f"shards/a/{FACE_SET}"].attrs["fingerprint"] = "0" * 64
    assert f"shard 'a': feature set '{FACE_SET}' was written with fingerprint 000000000000, the cache's set " \
           f"has {cache.feature_set(FACE_SET).fingerprint[:12]}" in cache.verify()


def test_decreasing_pts_is_found(cache):
    cache.root["shards/a/pts"][5] = 0.0
    assert cache.verify() == ["item 'a': pts decreases at frame 5"]


def test_info_counts_items_frames_labels_and_bytes(cache):
    cache.record_failure("broken", "broken.mp4: moov atom not found")
    cache.begin_video("half", 3)
    info = FeatureCache.open(cache.url).info()
    assert info["items"] == 2 and info["frames"] == 14 and info["shards"] == 2 and info["packed_shards"] == 0
    assert info["incomplete"] == ["half"]
    assert info["failures"] == {"broken": "broken.mp4: moov atom not found"}
    assert info["feature_dims"] == {FACE_SET: 8, AUDIO_SET: 5}
    assert [e["name"] for e in info["encoders"]] == ["fer_pyemotion", "soundnet8"]
    assert [(r["name"], r["shards_complete"], r["shards"]) for r in info["feature_sets"]] == [
        (FACE_SET, 2, 2), (AUDIO_SET, 2, 2)]
    assert info["labels"] == {"train": {"items": 1, "frames": 10, "va": 10, "expr": 7, "au": 0},
                              "validation": {"items": 1, "frames": 4, "va": 0, "expr": 0, "au": 4}}
    # features: 14 frames x (8 + 5) float16 + 2 bools + 1 float64 = 14 x 36 bytes, plus labels and metadata
    assert 14 * 36 < info["size_bytes"] < 14 * 36 + 60_000
    assert info["config"] == {"workers": 1} and info["settings"]["window_s"] == 10
