"""`emokd cache info | verify | relabel` through the real click entry point."""

import json
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from cache_support import ENCODERS, SETTINGS, video_values, write_video
from emokd.cache import FeatureCache
from emokd.cache.relabel import relabel
from emokd.cli import main


@pytest.fixture
def cache(tmp_path):
    cache = FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {"workers": 3}, ENCODERS)
    write_video(cache, "vid_a", video_values(10, seed=1))
    write_video(cache, "vid_c_left", video_values(6, seed=2))
    cache.write_labels("vid_a", expr=[2] * 10, split="train")
    cache.write_labels("vid_c_left", va=np.zeros((6, 2)), split="validation")
    return cache


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_info_text_and_json(cache):
    cache.record_failure("broken", "broken.mp4: no frames decoded")
    cache.begin_video("half", 4)
    cache.write_soft("teacher-1", "vid_a", {"expr": np.zeros((10, 8), np.float32)})
    result = run("cache", "info", cache.url)
    assert result.exit_code == 0, result.output
    assert "items        2 complete, 16 frames, in 2 shards (0 packed)" in result.output
    assert "fer_pyemotion-fc1          face  fer_pyemotion layer fc1 -> 8-d" in result.output
    assert "incomplete   1 shard(s): half" in result.output and "broken: broken.mp4: no frames decoded" in result.output
    data = json.loads(run("cache", "info", cache.url, "--json").output)
    assert data["items"] == 2 and data["frames"] == 16 and data["incomplete"] == ["half"]
    assert data["config"] == {"workers": 3}
    assert data["feature_dims"] == {"fer_pyemotion-fc1": 8, "soundnet8-conv8": 5}
    assert data["labels"]["validation"] == {"items": 1, "frames": 6, "va": 6, "expr": 0, "au": 0}
    assert data["soft_runs"] == {"teacher-1": {"shards": 1, "complete": False}}
    assert "soft labels  teacher-1: 1 shards (run not finished)" in result.output


def test_verify_exit_status(cache):
    result = run("cache", "verify", cache.url)
    assert result.exit_code == 0 and "ok: 2 complete item(s) in 2 shard(s), no defect" in result.output
    cache.root["shards/vid_a/fer_pyemotion-fc1"][4, 1] = np.nan
    cache.begin_video("half", 4)
    result = CliRunner().invoke(main, ["cache", "verify", cache.url])
    assert result.exit_code == 1
    assert "shard 'vid_a': array 'fer_pyemotion-fc1' has 1 NaN/inf value(s), first at item 'vid_a' frame 4" \
        in result.output
    assert "shard 'half': incomplete" in result.output and "2 defect(s)" in result.output


def test_missing_cache_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["cache", "info", str(tmp_path / "none.zarr")])
    assert result.exit_code == 2 and "no feature cache there" in result.output


def _item(vid, split, expr=None, va=None, n=10):
    labels = None if expr is None and va is None else SimpleNamespace(
        va=np.full((n, 2), np.nan, np.float32) if va is None else va,
        expr=np.full(n, -1, np.int8) if expr is None else expr, au=np.full((n, 12), -1, np.int8))
    return SimpleNamespace(video_id=vid, labels=labels, split=split, dataset="affwild2")


def test_relabel_rewrites_labels_only(cache):
    before = cache.read_video("vid_a")
    items = [_item("vid_a", "validation", expr=np.array([5] * 12, np.int8), n=12),
             _item("not_extracted", "train", expr=np.zeros(3, np.int8))]
    report = relabel(cache, items)
    assert report.rewritten == ["vid_a"] and report.changed == ["vid_a"]
    assert report.not_cached == ["not_extracted"] and report.not_indexed == ["vid_c_left"]
    got = cache.read_labels("vid_a")
    assert got["split"] == "validation" and (got["expr"] == 5).all() and len(got["expr"]) == 10
    assert cache.read_labels("vid_c_left")["split"] == "validation"   # kept
    after = cache.read_video("vid_a")
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    assert relabel(cache, items).changed == []    # same annotations: nothing changes


def test_relabel_command_uses_the_dataset_index(cache, monkeypatch, tmp_path):
    seen = []

    def index_dataset(root, probe=True, dataset_root=None):
        seen.append(root)
        return SimpleNamespace(items=[_item("vid_a", "test"), _item("vid_c_left", "train", expr=np.ones(6, np.int8), n=6)],
                               problems=["vid_x.txt: 3 lines, 4 frames"])

    fake = types.ModuleType("emokd.index.dataset")
    fake.index_dataset = index_dataset
    monkeypatch.setitem(sys.modules, "emokd.index.dataset", fake)
    result = run("cache", "relabel", str(tmp_path / "affwild2"), cache.url)
    assert result.exit_code == 0, result.output
    assert "DeprecationWarning" not in result.output
    assert seen == [str(tmp_path / "affwild2")]
    assert "relabelled 2 item(s), 2 changed" in result.output
    assert ("index: 1 problem(s) in " + str(tmp_path / "affwild2") + ": vid_x.txt: 3 lines, 4 frames "
            "(`emokd index") in result.output
    got = cache.read_labels("vid_a")
    assert got["split"] == "test" and (got["expr"] == -1).all()
    assert (cache.read_labels("vid_c_left")["expr"] == 1).all()


def test_relabel_from_a_real_affwild2_tree(tmp_path):
    """The real index over a generated Aff-Wild2 tree; then one annotation file changes."""
    from emokd.constants import EXPR_CLASSES
    from emokd.index.dataset import index_dataset
    from emokd.testing.affwild2_tree import write_affwild2_tree

    root = tmp_path / "affwild2"
    write_affwild2_tree(root)
    items = {item.video_id: item for item in index_dataset(root).items}
    cache = FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {}, ENCODERS)
    frames = {"vid_a": 45, "vid_c_left": 36, "vid_d": 30, "elsewhere/x": 5}
    for vid, n in frames.items():
        write_video(cache, vid, video_values(n, seed=n))
    features = {vid: cache.read_video(vid) for vid in frames}
    result = run("cache", "relabel", cache.url, str(root))     # the old order: accepted, with a note
    assert result.exit_code == 0, result.output
    assert "DeprecationWarning: `emokd cache relabel CACHE DATASET` is deprecated" in result.output
    assert "relabelled 3 item(s), 3 changed" in result.output
    assert "not in the index: elsewhere/x" in result.output
    for vid in ("vid_a", "vid_c_left"):
        got, want = cache.read_labels(vid), items[vid].labels
        np.testing.assert_array_equal(got["va"], want.va[:frames[vid]])
        np.testing.assert_array_equal(got["expr"], want.expr[:frames[vid]])
        np.testing.assert_array_equal(got["au"], want.au[:frames[vid]])
        assert got["split"] == items[vid].split == "train"
    test_video = cache.read_labels("vid_d")
    assert test_video["split"] == "test" and (test_video["expr"] == -1).all() and np.isnan(test_video["va"]).all()

    expr_file = root / "annotations" / "EXPR_Classification_Challenge" / "Train_Set" / "vid_a.txt"
    expr_file.write_text(",".join(EXPR_CLASSES) + "\n" + "4\n" * 50)   # 50 lines for 45 frames
    result = run("cache", "relabel", str(root), cache.url)
    assert "relabelled 3 item(s), 1 changed" in result.output, result.output
    got = cache.read_labels("vid_a")
    assert (got["expr"] == 4).all() and got["expr"].shape == (45,)
    np.testing.assert_array_equal(got["va"], items["vid_a"].labels.va)   # other tasks unchanged
    for vid, arrays in features.items():
        after = cache.read_video(vid)
        assert all(np.array_equal(after[k], arrays[k]) for k in arrays), vid
    assert cache.verify() == []
