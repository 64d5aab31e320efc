"""The dataset index on a generated Aff-Wild2-style tree, generic manifests, bad input, and the CLI."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from emokd.cli import main
from emokd.errors import DataError
from emokd.index.dataset import index_dataset
from emokd.index.manifest import Manifest
from emokd.index.summary import summarize
from emokd.testing.affwild2_tree import write_affwild2_tree
from emokd.testing.videos import make_video


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_affwild2_tree(tmp_path_factory.mktemp("affwild2"))


@pytest.fixture(scope="module")
def manifest(tree):
    return index_dataset(tree.root)


def expected_labels(truth: dict, written: dict, n_frames: int):
    """Truth restricted to the tasks whose files were written, fitted to n_frames."""
    va = np.full((n_frames, 2), np.nan, np.float32)
    expr = np.full(n_frames, -1, np.int8)
    au = np.full((n_frames, 12), -1, np.int8)
    m = min(n_frames, len(truth["expr"]))
    if "VA" in written:
        va[:m] = truth["va"][:m]
    if "EXPR" in written:
        expr[:m] = truth["expr"][:m]
    if "AU" in written:
        au[:m] = truth["au"][:m]
    return va, expr, au


def test_items_videos_and_splits(tree, manifest):
    items = manifest.by_id()
    assert sorted(items) == ["vid_a", "vid_b", "vid_c_left", "vid_c_right", "vid_d"]
    assert items["vid_a"].video_path == tree.root / "batch1" / "vid_a.mp4"
    assert items["vid_b"].video_path.suffix == ".avi"
    assert items["vid_c_left"].video_path == items["vid_c_right"].video_path == tree.root / "batch2" / "vid_c.mp4"
    assert items["vid_c_left"].crop_dir == tree.root / "cropped_aligned" / "vid_c_left"
    assert {k: v.split for k, v in items.items()} == {"vid_a": "train", "vid_b": "validation", "vid_c_left": "train",
                                                      "vid_c_right": "train", "vid_d": "test"}
    assert [items[k].n_frames for k in sorted(items)] == [45, 40, 36, 36, 30]
    assert items["vid_d"].labels is None
    assert manifest.test_lists == {"annotations/test_set/MTL_test_set": [f"vid_d/{k:05d}.jpg" for k in range(1, 31)]}


@pytest.mark.parametrize("name", ["vid_a", "vid_c_left", "vid_c_right"])
def test_per_task_labels_equal_the_files(tree, manifest, name):
    item = manifest.by_id()[name]
    va, expr, au = expected_labels(tree.truth[name], tree.written[name], item.n_frames)
    np.testing.assert_array_equal(item.labels.va, va)
    np.testing.assert_array_equal(item.labels.expr, expr)
    np.testing.assert_array_equal(item.labels.au, au)


def test_missing_label_lines_stay_unlabelled(manifest):
    left = manifest.by_id()["vid_c_left"].labels                 # 30 label lines, 36 frames
    assert left.n == 36 and (left.expr[30:] == -1).all() and (left.au[30:] == -1).all()


def test_extra_lines_ignored_with_a_problem_and_mtl_merged(tree, manifest):
    item = manifest.by_id()["vid_b"]                             # 43 lines, 40 frames; VA + AU files, MTL rows
    assert item.labels.n == 40
    truth = tree.truth["vid_b"]
    np.testing.assert_array_equal(item.labels.va, truth["va"][:40])
    np.testing.assert_array_equal(item.labels.au, truth["au"][:40])
    # EXPR comes only from the MTL file: rows of even frames, labelled where frame % 4 != 0
    expected = np.full(40, -1, np.int8)
    for k, (_, e, _) in tree.mtl_rows["vid_b"].items():
        expected[k] = e
    np.testing.assert_array_equal(item.labels.expr, expected)
    assert (expected >= 0).sum() > 0
    extra = [p for p in manifest.problems if "43 label lines for 40 frames" in p]
    assert sorted(p.split(":")[0].split("/")[-3] for p in extra) == ["AU_Detection_Challenge",
                                                                       "VA_Estimation_Challenge"]


def test_summary_counts(tree, manifest):
    s = summarize(manifest)
    assert s["items"] == 5 and s["video_files"] == 4 and s["frames"] == 45 + 40 + 36 + 36 + 30
    assert s["missing_crops"] == 2 + 1 + 1                       # vid_a gaps 3, 17; vid_c_* gap 0
    train = s["labelled_frames"]["train"]
    expected_va = int(np.isfinite(tree.truth["vid_a"]["va"]).all(axis=1).sum())
    assert train["VA"] == expected_va
    assert s["videos_without_annotations"] == [] and s["annotations_without_video"] == []


def test_manifest_roundtrip(tmp_path, manifest):
    manifest.save(tmp_path / "m.json")
    loaded = index_dataset(tmp_path / "m.json")
    assert [i.video_id for i in loaded.items] == [i.video_id for i in manifest.items]
    for a, b in zip(loaded.items, manifest.items):
        assert a.video_path == b.video_path and a.crop_dir == b.crop_dir and a.split == b.split
        if b.labels is not None:
            np.testing.assert_array_equal(a.labels.va, b.labels.va)
            np.testing.assert_array_equal(a.labels.au, b.labels.au)
            assert a.labels.expr.dtype == np.int8
    assert loaded.problems == manifest.problems and loaded.test_lists == manifest.test_lists


def test_bad_inputs_are_problems_and_the_rest_completes(tmp_path, tree):
    root = tmp_path / "bad"
    shutil.copytree(tree.root, root)
    ann = root / "annotations"
    # an unreadable video, a truncated one, a bad annotation line, a non-image in a crop folder,
    # and an annotation file whose video is missing
    (root / "batch1" / "broken.mp4").write_bytes(b"not a video at all" * 100)
    data = (root / "batch1" / "vid_a.mp4").read_bytes()
    (root / "batch1" / "vid_a.mp4").write_bytes(data[: len(data) // 3])
    va_file = ann / "VA_Estimation_Challenge" / "Train_Set" / "vid_a.txt"
    lines = va_file.read_text().splitlines()
    lines[5] = "0.1,0.2,0.3"
    va_file.write_text("\n".join(lines) + "\n")
    (root / "cropped_aligned" / "vid_b" / "notes.txt").write_text("hello")
    (ann / "EXPR_Classification_Challenge" / "Train_Set" / "ghost.txt").write_text("Neutral\n1\n2\n")
    m = index_dataset(root)
    ids = {i.video_id for i in m.items}
    assert {"vid_a", "vid_b", "vid_c_left", "vid_c_right", "vid_d", "broken"} <= ids
    text = "\n".join(m.problems)
    assert f"{va_file}:6: expected 2 field(s) for VA, got 3" in text
    assert f"{root / 'cropped_aligned' / 'vid_b' / 'notes.txt'}: not a crop image" in text
    assert f"{root / 'batch1' / 'broken.mp4'}" in text
    assert m.orphans == ["ghost"] and "ghost: annotations or test entries but no video" in text
    item = m.by_id()["vid_a"]
    assert item.labels is not None and np.isnan(item.labels.va[4]).all()
    assert summarize(m)["annotations_without_video"] == ["ghost"]


def test_generic_csv_and_json_manifests(tmp_path):
    sv = make_video(tmp_path / "clips" / "c1.mp4", 12, 25, (64, 48), audio=None)
    make_video(tmp_path / "clips" / "c2.avi", 8, 25, (64, 48), "mpeg4", audio=None)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "c1.csv").write_text("valence,arousal\n" + "0.5,0.5\n" * 14)
    (tmp_path / "crops" / "c1").mkdir(parents=True)
    (tmp_path / "m.csv").write_text("video,crops,labels,split,dataset\n"
                                    "clips/c1.mp4,crops/c1,labels/c1.csv,train,mine\n"
                                    "clips/c2.avi,,,validation,\n"
                                    "clips/missing.mp4,,,train,\n")
    m = index_dataset(tmp_path / "m.csv")
    items = m.by_id()
    assert sorted(items) == ["generic/c2", "mine/c1"]
    c1 = items["mine/c1"]
    assert c1.video_path == sv.path and c1.crop_dir == tmp_path / "crops" / "c1" and c1.split == "train"
    assert c1.n_frames == 12 and c1.labels.n == 12 and (c1.labels.va == 0.5).all()
    assert any("14 label rows for 12 frames" in p for p in m.problems)
    assert any(p.startswith(f"{tmp_path / 'm.csv'}:4: video") for p in m.problems)
    (tmp_path / "m.json").write_text(json.dumps([{"video": "clips/c2.avi", "id": "two", "split": "test"}]))
    m = index_dataset(tmp_path / "m.json")
    assert [(i.video_id, i.split, i.n_frames) for i in m.items] == [("generic/two", "test", 8)]


def test_sources_file_is_delegated(tmp_path, monkeypatch):
    import emokd.index.sources as datasets

    called = []
    monkeypatch.setattr(datasets, "index_sources", lambda p: called.append(p) or Manifest([]))
    (tmp_path / "s.yaml").write_text("sources: []\n")
    assert index_dataset(tmp_path / "s.yaml").items == [] and called == [tmp_path / "s.yaml"]
    with pytest.raises(DataError, match="not found"):
        index_dataset(tmp_path / "nothing")


def test_cli_index_prints_summary_and_writes_manifest(tmp_path, tree):
    out = tmp_path / "manifest.json"
    result = CliRunner().invoke(main, ["index", str(tree.root), "--out", str(out), "--problems"])
    assert result.exit_code == 0, result.output
    assert "items: 5 (test 1, train 3, validation 1) from 4 video files" in result.output
    assert "frames: 187" in result.output
    assert "missing crops: 4 frames" in result.output
    assert "43 label lines for 40 frames" in result.output
    assert len(Manifest.load(out).items) == 5
    result = CliRunner().invoke(main, ["index", str(tree.root), "--json", "--no-probe"])
    assert json.loads(result.output)["items"] == 5


def _csv_dataset(root, splits):
    for name in splits:
        make_video(root / "clips" / f"{name}.mp4", 6, 25, (32, 32), audio=None)
    rows = "".join(f"clips/{name}.mp4,{split}\n" for name, split in splits.items())
    (root / "videos.csv").write_text("video,split\n" + rows)
    return root / "videos.csv"


def test_csv_splits_any_case_with_val_and_valid(tmp_path):
    path = _csv_dataset(tmp_path, {"a": "Train", "b": "val", "c": "VALID", "d": "Validation", "e": "TEST", "f": ""})
    splits = {i.video_id: i.split for i in index_dataset(path, probe=False).items}
    assert splits == {"generic/a": "train", "generic/b": "validation", "generic/c": "validation",
                      "generic/d": "validation", "generic/e": "test", "generic/f": "unlabelled"}


def test_an_unknown_csv_split_is_refused_naming_the_row(tmp_path):
    path = _csv_dataset(tmp_path, {"a": "train", "b": "dev"})
    with pytest.raises(DataError, match=r"videos.csv:3: split 'dev' is not one of train, validation"):
        index_dataset(path, probe=False)


def test_unknown_label_columns_are_problems(tmp_path):
    from emokd.index.abaw import read_label_file

    path = tmp_path / "labels.csv"
    path.write_text("frame,valence,arousal,AU5,AU12,smile\n0,0.1,0.2,1,1,3\n")
    labels, problems = read_label_file(path)
    assert problems == [f"{path}:1: unknown label column(s) ['au5', 'smile'] ignored (known: valence, arousal, "
                        "expression, AU1, AU2, AU4, AU6, AU7, AU10, AU12, AU15, AU23, AU24, AU25, AU26)"]
    assert labels.va[0].tolist() == pytest.approx([0.1, 0.2]) and labels.au[0, 6] == 1


def test_paths_are_absolute_and_a_moved_dataset_is_rerooted(tmp_path, monkeypatch):
    data = tmp_path / "data"
    _csv_dataset(data, {"a": "train", "b": "validation"})
    monkeypatch.chdir(tmp_path)
    manifest = index_dataset("data/videos.csv", probe=False)                 # named relative
    assert manifest.root == data
    assert [i.video_path for i in manifest.items] == [data / "clips" / "a.mp4", data / "clips" / "b.mp4"]
    manifest.save(tmp_path / "saved.json")
    moved = tmp_path / "elsewhere" / "data"
    shutil.move(str(data), str(moved))
    rerooted = index_dataset("saved.json", dataset_root=moved)
    assert rerooted.root == moved
    assert [i.video_path for i in rerooted.items] == [moved / "clips" / "a.mp4", moved / "clips" / "b.mp4"]
    assert all(i.video_path.is_file() for i in rerooted.items)
    result = CliRunner().invoke(main, ["index", "saved.json", "--dataset-root", str(moved), "--no-probe"])
    assert result.exit_code == 0 and "items: 2" in result.output
