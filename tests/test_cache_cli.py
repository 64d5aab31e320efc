"""`emokd cache info | verify | relabel` through the real click entry point."""

import json
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from cache_support import ARRAYS, ENCODERS, SETTINGS, video_values, write_video
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
    cache.begin_video("half", 4, ARRAYS)
    result = run("cache", "info", cache.url)
    assert result.exit_code == 0, result.output
    assert "videos       2 complete, 16 frames" in result.output
    assert "face       fer_default layer fc1 -> 8-d" in result.output
    assert "incomplete   1: half" in result.output and "broken: broken.mp4: no frames decoded" in result.output
    data = json.loads(run("cache", "info", cache.url, "--json").output)
    assert data["videos"] == 2 and data["frames"] == 16 and data["incomplete"] == ["half"]
    assert data["config"] == {"workers": 3} and data["feature_dims"] == {"face": 8, "audio": 5}
    assert data["labels"]["validation"] == {"videos": 1, "frames": 6, "va": 6, "expr": 0, "au": 0}


def test_verify_exit_status(cache):
    result = run("cache", "verify", cache.url)
    assert result.exit_code == 0 and "ok: 2 complete video(s), no defect" in result.output
    cache.root["videos/vid_a/face"][4, 1] = np.nan
    cache.begin_video("half", 4, ARRAYS)
    result = CliRunner().invoke(main, ["cache", "verify", cache.url])
    assert result.exit_code == 1
    assert "video 'vid_a': array 'face' has 1 NaN/inf value(s), first at frame 4" in result.output
    assert "video 'half': incomplete" in result.output and "2 defect(s)" in result.output


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

    def index_dataset(root):
        seen.append(root)
        return SimpleNamespace(items=[_item("vid_a", "test"), _item("vid_c_left", "train", expr=np.ones(6, np.int8), n=6)],
                               problems=["vid_x.txt: 3 lines, 4 frames"])

    fake = types.ModuleType("emokd.pipeline.index")
    fake.index_dataset = index_dataset
    monkeypatch.setitem(sys.modules, "emokd.pipeline.index", fake)
    result = run("cache", "relabel", cache.url, str(tmp_path / "affwild2"))
    assert result.exit_code == 0, result.output
    assert seen == [str(tmp_path / "affwild2")]
    assert "relabelled 2 video(s), 2 changed" in result.output
    assert "index: vid_x.txt: 3 lines, 4 frames" in result.output
    got = cache.read_labels("vid_a")
    assert got["split"] == "test" and (got["expr"] == -1).all()
    assert (cache.read_labels("vid_c_left")["expr"] == 1).all()
