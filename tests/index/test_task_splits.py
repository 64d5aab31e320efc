"""Per-task splits: ABAW lists a video's files per task, so one video can be VA training data and
EXPR validation data; the MTL set keeps its own split and frames."""

import json

import numpy as np
import pytest

from emokd.errors import DataError
from emokd.index.dataset import index_dataset
from emokd.index.manifest import Manifest
from emokd.index.summary import summarize
from emokd.testing.affwild2_tree import TreeVideo, write_affwild2_tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    videos = [
        TreeVideo("mixed", 24, splits={"VA": "train", "EXPR": "validation"}),
        TreeVideo("mtl_only", 20, splits={}, mtl="validation"),
        TreeVideo("clash", 20, splits={"VA": "train"}, mtl="validation"),
        TreeVideo("plain", 20, splits={"VA": "train", "EXPR": "train", "AU": "train"}, mtl="train"),
    ]
    return write_affwild2_tree(tmp_path_factory.mktemp("splits"), videos)


@pytest.fixture(scope="module")
def manifest(tree):
    return index_dataset(tree.root)


def test_a_video_keeps_one_split_per_task(tree, manifest):
    item = manifest.by_id()["mixed"]
    assert item.splits == {"VA": "train", "EXPR": "validation", "AU": "unlabelled", "MTL": "unlabelled"}
    assert item.split == "mixed" and item.mtl is None
    truth = tree.truth["mixed"]
    np.testing.assert_array_equal(item.labels.va, truth["va"])          # both tasks' labels kept
    np.testing.assert_array_equal(item.labels.expr, truth["expr"])
    assert (item.labels.au == -1).all()


def test_the_mtl_set_gives_split_and_frames(tree, manifest):
    item = manifest.by_id()["mtl_only"]
    assert item.splits == {"VA": "validation", "EXPR": "validation", "AU": "validation", "MTL": "validation"}
    listed = sorted(k for k, (va, expr, au) in tree.mtl_rows["mtl_only"].items()
                    if np.isfinite(va).all() or expr >= 0 or (au >= 0).any())
    assert np.flatnonzero(item.mtl).tolist() == listed
    plain = manifest.by_id()["plain"]
    assert plain.splits["MTL"] == "train" and plain.split == "train" and plain.mtl.any()


def test_mtl_rows_never_move_a_label_into_another_split(tree, manifest):
    """`clash`: VA file in Train_Set, MTL rows in validation. Its VA labels stay the training file's;
    the MTL rows fill EXPR and AU (no file of their own) as validation; the clash is a problem."""
    item = manifest.by_id()["clash"]
    assert item.splits == {"VA": "train", "EXPR": "validation", "AU": "validation", "MTL": "validation"}
    np.testing.assert_array_equal(item.labels.va, tree.truth["clash"]["va"])
    rows = tree.mtl_rows["clash"]
    expected_expr = np.full(20, -1, np.int8)
    for k, (_, e, _) in rows.items():
        expected_expr[k] = e
    np.testing.assert_array_equal(item.labels.expr, expected_expr)
    assert any("clash is MTL validation data but its VA file is in train" in p for p in manifest.problems)


def test_summary_counts_each_task_under_its_own_split(tree, manifest):
    s = summarize(manifest)
    assert s["items_per_split"]["mixed"] == 2                             # mixed and clash
    truth = tree.truth["mixed"]
    assert s["labelled_frames"]["validation"]["EXPR"] >= int((truth["expr"] >= 0).sum())
    assert s["labelled_frames"]["train"]["VA"] >= int(np.isfinite(truth["va"]).all(1).sum())


def test_manifest_round_trip_keeps_splits_and_mtl_frames(tmp_path, manifest):
    manifest.save(tmp_path / "m.json")
    loaded = Manifest.load(tmp_path / "m.json").by_id()
    for vid, item in manifest.by_id().items():
        assert loaded[vid].task_splits() == item.task_splits() and loaded[vid].split == item.split
        assert (loaded[vid].mtl is None) == (item.mtl is None)
        if item.mtl is not None:
            np.testing.assert_array_equal(loaded[vid].mtl, item.mtl)


def test_a_version_1_manifest_of_affwild2_must_be_written_again(tmp_path, manifest):
    manifest.save(tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text())
    data["version"] = 1
    for item in data["items"]:
        item.pop("splits")
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="before per-task splits.*emokd index"):
        Manifest.load(tmp_path / "m.json")


def test_generic_manifest_per_task_split_columns(tmp_path):
    from emokd.testing.videos import make_video

    make_video(tmp_path / "c1.mp4", 6, 25, (64, 48), audio=None)
    (tmp_path / "m.csv").write_text("video,split,expr_split\nc1.mp4,train,validation\n")
    item = index_dataset(tmp_path / "m.csv").items[0]
    assert item.task_splits() == {"VA": "train", "EXPR": "validation", "AU": "train", "MTL": "unlabelled"}
    assert item.split == "mixed"
