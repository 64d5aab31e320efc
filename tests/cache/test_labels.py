"""Labels (fitted per cached frame), teacher soft labels and the failure log."""

import numpy as np
import pytest

from cache_support import ENCODERS, SETTINGS, video_values, write_video
from emokd.cache import FeatureCache
from emokd.errors import CacheError


@pytest.fixture
def cache(tmp_path):
    cache = FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {}, ENCODERS)
    write_video(cache, "v/1", video_values(6, seed=1))
    return cache


def test_labels_are_fitted_to_the_cached_frames(cache):
    va = np.array([[0.5, -0.25]] * 8, np.float32)        # 8 rows for 6 frames: last 2 dropped
    va[1] = np.nan
    expr = np.array([3, -1, 7, 0], np.int8)              # 4 rows: frames 4, 5 missing
    au = np.zeros((6, 12), np.int8)
    au[2, 0] = 1
    au[3] = -1
    cache.write_labels("v/1", va=va, expr=expr, au=au, split="train", dataset="affwild2")
    got = FeatureCache.open(cache.url).read_labels("v/1")
    assert got["va"].dtype == np.float32 and got["va"].shape == (6, 2)
    np.testing.assert_array_equal(got["va"], va[:6])
    np.testing.assert_array_equal(got["expr"], np.array([3, -1, 7, 0, -1, -1], np.int8))
    assert got["expr"].dtype == np.int8 and got["au"].dtype == np.int8
    np.testing.assert_array_equal(got["au"], au)
    assert got["split"] == "train" and got["dataset"] == "affwild2"
    assert got["splits"] == {"VA": "train", "EXPR": "train", "AU": "train", "MTL": "unlabelled"}
    attrs = dict(cache.root["shards/v~2F1/labels"].attrs)
    assert attrs["items"]["n_label_rows"] == [{"va": 8, "expr": 4, "au": 6}] and attrs["status"] == "complete"


def test_per_task_splits_of_a_version_1_split_follow_the_labelled_tasks():
    from emokd.cache.labels import labelled_splits

    has = {"VA": False, "EXPR": True, "AU": False}
    assert labelled_splits("train", has) == {"VA": "unlabelled", "EXPR": "train", "AU": "unlabelled",
                                             "MTL": "unlabelled"}
    assert labelled_splits("test", has) == {"VA": "test", "EXPR": "test", "AU": "test", "MTL": "unlabelled"}


def test_missing_tasks_are_all_missing_and_relabel_replaces(cache):
    cache.write_labels("v/1", expr=[1, 2, 3, 4, 5, 6], split="train")
    cache.write_labels("v/1", va=np.zeros((6, 2)), split="validation", dataset="other")
    got = cache.read_labels("v/1")
    assert np.isnan(got["va"]).sum() == 0 and (got["expr"] == -1).all() and (got["au"] == -1).all()
    assert got["split"] == "validation" and got["dataset"] == "other"
    assert cache.read_video("v/1")["face"].shape == (6, 8)  # features untouched


def test_label_values_are_checked(cache):
    with pytest.raises(CacheError, match=r"va outside \[-1, 1\].*frame 2"):
        cache.write_labels("v/1", va=[[0, 0], [1, -1], [1.5, 0]])
    with pytest.raises(CacheError, match=r"expr outside -1\.\.7 at frame 1: 8"):
        cache.write_labels("v/1", expr=[0, 8])
    with pytest.raises(CacheError, match=r"au values outside \{-1, 0, 1\} at frame 0"):
        cache.write_labels("v/1", au=[[2] + [0] * 11])
    with pytest.raises(CacheError, match="split 'dev'"):
        cache.write_labels("v/1", split="dev")
    with pytest.raises(CacheError, match="no item 'nope'"):
        cache.write_labels("nope", split="train")
    got = cache.read_labels("v/1")   # a committed shard always has labels: all missing until written
    assert got["split"] == "unlabelled" and (got["expr"] == -1).all() and cache.has_labels("v/1")


def test_soft_labels_per_teacher_run(cache):
    write_video(cache, "v/2", video_values(4, seed=2))
    logits = np.arange(48, dtype=np.float32).reshape(6, 8)
    cache.write_soft("teacher/run-1", "v/1", {"expr": logits, "va": np.zeros((6, 2), np.float32)},
                     attrs={"temperature": 2.5})
    assert cache.soft_runs() == ["teacher/run-1"] and cache.soft_runs(complete_only=True) == []
    assert cache.has_soft("teacher/run-1", "v/1") and not cache.has_soft("teacher/run-1", "v/2")
    assert cache.soft_video_attrs("teacher/run-1", "v/1") == {"temperature": 2.5}
    assert not cache.has_soft("other", "v/1")
    got = FeatureCache.open(cache.url).read_soft("teacher/run-1", "v/1")
    np.testing.assert_array_equal(got["expr"], logits)
    assert set(got) == {"expr", "va"}
    cache.write_soft("teacher/run-1", "v/2", {"expr": np.ones((4, 8), np.float32)})
    cache.finish_soft_run("teacher/run-1", {"checkpoint": "runs/t/best.pt"})
    assert cache.soft_runs(complete_only=True) == ["teacher/run-1"]
    assert cache.soft_video_ids("teacher/run-1") == ["v/1", "v/2"]
    with pytest.raises(CacheError, match=r"array 'expr' has 5 rows, expected 4"):
        cache.write_soft("teacher/run-1", "v/2", {"expr": np.ones((5, 8), np.float32)})
    with pytest.raises(CacheError, match=r"has shape \(5, 8\), expected \(4,\) or \(4, k\)"):
        cache.write_shard_soft("teacher/run-1", "v~2F2", {"expr": np.ones((5, 8), np.float32)})
    with pytest.raises(CacheError, match="no complete soft labels of teacher run 'x'"):
        cache.read_soft("x", "v/1")


def test_interrupted_soft_labels_are_invisible(cache):
    cache.write_soft("t", "v/1", {"expr": np.ones((6, 8), np.float32)})
    cache.root["shards/v~2F1/soft/t"].attrs["status"] = "writing"   # as if killed before the marker
    assert not cache.has_soft("t", "v/1") and cache.soft_video_ids("t") == []
    assert any("soft labels of run 't', shard 'v~2F1': incomplete" in p for p in cache.verify())


def test_failure_log_survives_reopen_and_clears_on_success(cache):
    writer = cache.begin_video("bad/video", 3)
    writer.write("face", 0, np.zeros((3, 8)))
    cache.record_failure("bad/video", "corrupt.mp4: no frames decoded")
    cache.record_failure("bad/video", "corrupt.mp4: still no frames")
    assert cache.video_ids(include_incomplete=True) == ["v/1"]  # the partial shard went with it
    assert not cache.has_labels("bad/video") and cache.verify() == []
    reopened = FeatureCache.create(cache.url, SETTINGS, {}, ENCODERS)
    log = reopened.failure_log()
    assert list(log) == ["bad/video"] and log["bad/video"]["attempts"] == 2
    assert log["bad/video"]["message"] == "corrupt.mp4: still no frames" and log["bad/video"]["time"]
    assert reopened.failures() == {"bad/video": "corrupt.mp4: still no frames"}
    write_video(reopened, "bad/video", video_values(3, seed=3))
    assert reopened.failures() == {}


def test_per_task_splits_and_mtl_frames_round_trip(cache):
    mtl = np.array([0, 1, 1, 0, 0, 1], bool)
    cache.write_labels("v/1", va=np.zeros((6, 2)), expr=[1] * 6,
                       splits={"VA": "train", "EXPR": "validation", "MTL": "validation"}, mtl=mtl)
    got = FeatureCache.open(cache.url).read_labels("v/1")
    assert got["splits"] == {"VA": "train", "EXPR": "validation", "AU": "unlabelled", "MTL": "validation"}
    assert got["split"] == "mixed"
    np.testing.assert_array_equal(got["mtl"], mtl)
    cache.write_labels("v/1", expr=[1] * 6, split="test")              # one split: every task
    got = cache.read_labels("v/1")
    assert got["splits"] == {"VA": "test", "EXPR": "test", "AU": "test", "MTL": "unlabelled"}
    assert not got["mtl"].any()
    from pathlib import Path
    assert not (Path(cache.url) / "shards/v~2F1/labels/mtl/c").exists()   # no MTL set: no chunk stored
    with pytest.raises(CacheError, match="splits .*'EXPR': 'dev'"):
        cache.write_labels("v/1", splits={"EXPR": "dev"})


def test_labels_written_before_per_task_splits_are_never_read_as_valid(cache):
    """A labels group without `splits` (an older emokd merged a video listed by two tasks in
    different splits into "validation"): read as None, and verify says how to rewrite it."""
    cache.write_labels("v/1", expr=[1] * 6, split="validation")
    group = cache.root["shards/v~2F1/labels"]
    group.attrs["items"] = {k: v for k, v in group.attrs["items"].items() if k != "splits"}
    assert cache.read_labels("v/1")["splits"] is None
    assert any("before per-task splits; run `emokd cache relabel DATASET CACHE`" in p for p in cache.verify())
