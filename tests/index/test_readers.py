"""AffectNet, ExpW and AFEW-VA readers on small files written here, and the sources file."""

import json

import numpy as np
import pytest

from emokd.errors import DataError
from emokd.index.readers.affectnet import read_affectnet
from emokd.index.readers.afew_va import read_afew_va
from emokd.index.readers.expw import read_expw

AFFECTNET_HEADER = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
                    "expression,valence,arousal\n")


def _affectnet(tmp_path, train_rows, val_rows=()):
    lists = tmp_path / "Manually_Annotated_file_lists"
    lists.mkdir()
    (tmp_path / "Manually_Annotated_Images").mkdir()
    (lists / "training.csv").write_text(AFFECTNET_HEADER + "".join(train_rows))
    if val_rows:
        (lists / "validation.csv").write_text(AFFECTNET_HEADER + "".join(val_rows))
    return tmp_path


LM = '"10.1;20.2;30.3;40.4"'


def test_affectnet_labels_mapping_and_dropped_classes(tmp_path):
    root = _affectnet(tmp_path, [
        f"1/a.jpg,5,6,100,110,{LM},1,0.5,-0.25\n",      # Happy -> Happiness (4)
        f"1/b.jpg,0,0,50,50,{LM},6,-2,-2\n",            # Anger -> 1, VA absent
        f"2/c.png,0,0,50,50,{LM},7,0.1,0.2\n",          # Contempt: EXPR dropped, VA kept
        f"2/d.jpg,0,0,50,50,{LM},8,-2,-2\n",            # None without VA: item dropped
        f"2/e.jpg,0,0,50,50,{LM},10,-2,-2\n",           # No-Face: dropped
        f"2/f.jpg,0,0,50,50,{LM},9,-2,-2\n",            # Uncertain without VA: dropped
    ], [f"3/g.jpg,1,2,3,4,{LM},4,0,0\n"])               # Fear -> 3, validation split
    items, problems = read_affectnet(root)
    by_id = {it.video_id: it for it in items}
    assert sorted(by_id) == ["affectnet/1/a", "affectnet/1/b", "affectnet/2/c", "affectnet/3/g"]
    a = by_id["affectnet/1/a"]
    assert a.frame_images == [root / "Manually_Annotated_Images" / "1/a.jpg"]
    assert a.face_boxes.tolist() == [[5, 6, 100, 110]] and a.video_path is None and a.split == "train"
    assert a.fps == 1.0   # one frame at t = 0
    assert a.dataset == "affectnet"
    assert a.labels.expr.tolist() == [4] and a.labels.va.tolist() == [[0.5, -0.25]]
    assert (a.labels.au == -1).all() and a.labels.au.shape == (1, 12)
    b = by_id["affectnet/1/b"]
    assert b.labels.expr.tolist() == [1] and np.isnan(b.labels.va).all()
    c = by_id["affectnet/2/c"]
    assert c.labels.expr.tolist() == [-1] and np.allclose(c.labels.va, [[0.1, 0.2]])
    g = by_id["affectnet/3/g"]
    assert g.split == "validation" and g.labels.expr.tolist() == [3]
    assert any("3 rows" in p for p in problems)


@pytest.mark.parametrize("row, what", [
    (f"1/x.jpg,5,6,100,110,{LM},1,0.5\n", "expected 9 fields, found 8"),
    (f"1/x.jpg,5,six,100,110,{LM},1,0.5,0.1\n", "not a number"),
    (f"1/x.jpg,5,6,100,110,{LM},12,0.5,0.1\n", "expression code 12"),
    (f"1/x.jpg,5,6,100,110,{LM},1,1.5,0.1\n", "valence/arousal (1.5, 0.1) outside [-1, 1]"),
])
def test_affectnet_malformed_line_named(tmp_path, row, what):
    root = _affectnet(tmp_path, [f"1/a.jpg,5,6,100,110,{LM},1,0.5,-0.25\n", row])
    with pytest.raises(DataError) as err:
        read_affectnet(root)
    assert f"training.csv:3: {what}" in str(err.value)


def test_expw_several_faces_per_image(tmp_path):
    (tmp_path / "label").mkdir()
    (tmp_path / "label" / "label.lst").write_text(
        "angry_actor_104.jpg 0 28 113 226 141 22.9 0\n"
        "angry_actor_104.jpg 1 100 300 380 190 10.5 3\n"
        "happy_girl_3.jpg 0 10 20 70 90 55.0 6\n"
    )
    items, problems = read_expw(tmp_path)
    assert [it.video_id for it in items] == ["expw/angry_actor_104/0", "expw/angry_actor_104/1",
                                             "expw/happy_girl_3/0"]
    first, second, third = items
    assert first.frame_images == second.frame_images == [tmp_path / "angry_actor_104.jpg"]
    # top left right bottom -> x=left, y=top, w=right-left, h=bottom-top
    assert first.face_boxes.tolist() == [[113, 28, 113, 113]]
    assert second.face_boxes.tolist() == [[300, 100, 80, 90]]
    assert [it.labels.expr.tolist() for it in items] == [[1], [4], [0]]   # angry, happy, neutral
    assert all(np.isnan(it.labels.va).all() and it.split == "train" and it.dataset == "expw" for it in items)
    kept, problems = read_expw(tmp_path, min_confidence=20.0)
    assert len(kept) == 2 and "1 faces under confidence" in problems[0]


def test_expw_images_folder_and_malformed_line(tmp_path):
    (tmp_path / "image" / "origin").mkdir(parents=True)
    (tmp_path / "label.lst").write_text("a.jpg 0 1 2 30 40 9.0 5\nb.jpg 0 1 2 30 40 9.0\n")
    with pytest.raises(DataError, match=r"label\.lst:2: expected 8 fields"):
        read_expw(tmp_path)
    (tmp_path / "label.lst").write_text("a.jpg 0 1 2 30 40 9.0 5\nb.jpg 0 1 2 30 40 9.0 7\n")
    with pytest.raises(DataError, match=r"label\.lst:2: expression 7"):
        read_expw(tmp_path)
    (tmp_path / "label.lst").write_text("a.jpg 0 1 2 30 40 9.0 5\n")
    items, _ = read_expw(tmp_path)
    assert items[0].frame_images == [tmp_path / "image" / "origin" / "a.jpg"]
    assert items[0].labels.expr.tolist() == [6]


def _afew_clip(root, name, frames, suffix=".png"):
    clip = root / name
    clip.mkdir(parents=True)
    for frame_id in frames:
        (clip / f"{frame_id}{suffix}").write_bytes(b"")
    (clip / f"{name}.json").write_text(json.dumps({"actor": "x", "video_id": name, "frames": frames}))
    return clip


def test_afew_va_scale_order_and_boxes(tmp_path):
    landmarks = [[10.0, 20.0], [50.0, 25.0], [30.0, 80.0]]
    _afew_clip(tmp_path, "001", {
        "00010": {"valence": -10, "arousal": 10, "landmarks": landmarks},
        "00002": {"valence": 5, "arousal": -2.5, "landmarks": landmarks},
        "00000": {"valence": 0, "arousal": 1, "landmarks": []},
    })
    _afew_clip(tmp_path / "part2", "002", {"00000": {"valence": 3, "arousal": 4, "landmarks": landmarks}}, ".jpg")
    (tmp_path / "notes").mkdir()
    items, problems = read_afew_va(tmp_path, fps=30.0)
    assert [it.video_id for it in items] == ["afew_va/001", "afew_va/002"]
    clip = items[0]
    assert [p.name for p in clip.frame_images] == ["00000.png", "00002.png", "00010.png"]   # numeric order
    assert np.allclose(clip.labels.va, [[0.0, 0.1], [0.5, -0.25], [-1.0, 1.0]])
    assert (clip.labels.expr == -1).all() and clip.fps == 30.0 and clip.video_path is None
    assert np.isnan(clip.face_boxes[0]).all()
    assert clip.face_boxes[1].tolist() == [10, 20, 40, 60]
    assert items[1].frame_images[0].name == "00000.jpg"
    assert problems == [f"{tmp_path / 'notes'}: no annotation JSON, skipped"]


def test_afew_va_malformed(tmp_path):
    _afew_clip(tmp_path, "001", {"00000": {"valence": 11, "arousal": 0}})
    with pytest.raises(DataError, match=r"001\.json: frame 00000: valence/arousal \(11.0, 0.0\) outside"):
        read_afew_va(tmp_path)
    (tmp_path / "001" / "001.json").write_text('{"frames": {\n"00000": {"valence": 1,, }}}')
    with pytest.raises(DataError, match=r"001\.json:2: not valid JSON"):
        read_afew_va(tmp_path)
    (tmp_path / "001" / "001.json").write_text('{"frames": {"00000": {"arousal": 1}}}')
    with pytest.raises(DataError, match=r"frame 00000: bad valence/arousal"):
        read_afew_va(tmp_path)
    (tmp_path / "001" / "001.json").write_text('{"frames": {"00007": {"valence": 1, "arousal": 1}}}')
    with pytest.raises(DataError, match=r"frame 00007: no image"):
        read_afew_va(tmp_path)


def _three_databases(tmp_path):
    (tmp_path / "affectnet").mkdir()
    _affectnet(tmp_path / "affectnet", [f"1/a.jpg,5,6,100,110,{LM},1,0.5,-0.25\n",
                                        f"1/b.jpg,0,0,50,50,{LM},6,-2,-2\n"])
    (tmp_path / "expw").mkdir()
    (tmp_path / "expw" / "label.lst").write_text("".join(f"img{i}.jpg 0 1 2 30 40 9.0 {i % 7}\n" for i in range(6)))
    frames = {f"{k:05d}": {"valence": k, "arousal": -k, "landmarks": []} for k in range(7)}
    _afew_clip(tmp_path / "afew", "001", frames)


def test_index_sources_tasks_thin_and_namespaces(tmp_path):
    from emokd.index.sources import index_sources

    _three_databases(tmp_path)
    (tmp_path / "sources.yaml").write_text(
        "sources:\n"
        "  - {name: affectnet, kind: affectnet, root: affectnet, tasks: [VA]}\n"
        "  - {name: expw, kind: expw, root: expw, tasks: [EXPR], thin: 2}\n"
        "  - {name: afew_va, kind: afew_va, root: afew, thin: {VA: 3}}\n")
    manifest = index_sources(tmp_path / "sources.yaml")
    by_id = {it.video_id: it for it in manifest.items}
    # affectnet/1/b had only an expression: with tasks [VA] it has no label left and is left out
    assert sorted(by_id) == ["afew_va/001", "affectnet/1/a", "expw/img0/0", "expw/img2/0", "expw/img4/0"]
    a = by_id["affectnet/1/a"]
    assert a.labels.expr.tolist() == [-1] and a.labels.va.tolist() == [[0.5, -0.25]]
    assert [by_id[f"expw/img{i}/0"].labels.expr[0] for i in (0, 2, 4)] == [1, 3, 5]   # every 2nd still
    (tmp_path / "val.yaml").write_text(
        "sources:\n  - {name: expw, kind: expw, root: expw, thin: 2, options: {split: validation}}\n")
    validation = index_sources(tmp_path / "val.yaml").items
    assert len(validation) == 6 and all(it.split == "validation" for it in validation)   # not thinned
    clip = by_id["afew_va/001"]
    kept = ~np.isnan(clip.labels.va).any(1)
    assert kept.tolist() == [True, False, False, True, False, False, True]        # every 3rd frame
    assert np.allclose(clip.labels.va[kept], [[0, 0], [0.3, -0.3], [0.6, -0.6]])
    assert len(clip.frame_images) == 7                                             # features for all frames
    assert {it.dataset for it in manifest.items} == {"affectnet", "expw", "afew_va"}


def test_index_sources_merges_shared_items_per_frame(tmp_path):
    _three_databases(tmp_path)
    (tmp_path / "sources.toml").write_text(
        '[[sources]]\nname = "affectnet"\nkind = "affectnet"\nroot = "affectnet"\ntasks = ["EXPR"]\n'
        '[[sources]]\nname = "affectnet"\nkind = "affectnet"\nroot = "affectnet"\ntasks = ["VA"]\n')
    from emokd.index.dataset import index_dataset

    manifest = index_dataset(tmp_path / "sources.toml")        # the index's entry point hands it over
    a = {it.video_id: it for it in manifest.items}["affectnet/1/a"]
    assert a.labels.expr.tolist() == [4] and a.labels.va.tolist() == [[0.5, -0.25]]
    assert len(manifest.items) == 2


def test_merge_labels_union_lengths_and_conflicts():
    from emokd.index.readers.common import frame_labels_arrays
    from emokd.index.sources import merge_labels
    from emokd.index.manifest import FrameLabels

    va1, expr1, au1 = frame_labels_arrays(3)
    expr1[:] = [2, -1, 5]
    va2, expr2, au2 = frame_labels_arrays(4)
    va2[1:] = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]
    expr2[:] = [2, 3, 6, 1]
    merged, conflicts = merge_labels(FrameLabels(va=va1, expr=expr1, au=au1), FrameLabels(va=va2, expr=expr2, au=au2))
    assert merged.expr.tolist() == [2, 3, 5, 1]          # first source wins where both label a frame
    assert np.isnan(merged.va[0]).all() and np.allclose(merged.va[1:], va2[1:])
    assert merged.au.shape == (4, 12) and conflicts == 1  # frame 2: 5 vs 6


@pytest.mark.parametrize("text, what", [
    ("sources: []\n", "non-empty 'sources'"),
    ("sources:\n  - {kind: lfw, root: x}\n", "sources[1]: kind 'lfw'"),
    ("sources:\n  - {kind: expw, root: expw, tasks: [AROUSAL]}\n", "tasks ['AROUSAL']"),
    ("sources:\n  - {kind: expw, root: expw, thin: 0}\n", "thin values must be >= 1"),
    ("sources:\n  - {kind: expw, root: expw, colour: red}\n", "unknown key(s) ['colour']"),
    ("sources:\n  - {kind: expw, root: expw, options: {fps: 3}}\n", "bad options"),
])
def test_index_sources_errors(tmp_path, text, what):
    from emokd.errors import ConfigError
    from emokd.index.sources import index_sources

    _three_databases(tmp_path)
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        index_sources(tmp_path / "s.yaml")
    assert what in str(err.value) and "s.yaml" in str(err.value)


def test_index_sources_affwild2_shared_videos_carry_both_labels(tmp_path):
    from emokd.index.sources import index_sources
    from emokd.testing.affwild2_tree import TreeVideo, write_affwild2_tree

    tree = write_affwild2_tree(tmp_path / "abaw", [TreeVideo("vid_s", 12, 25, splits={"VA": "train", "EXPR": "train",
                                                                                       "AU": "train"})])
    (tmp_path / "expw").mkdir()
    (tmp_path / "expw" / "label.lst").write_text("vid_s.jpg 0 1 2 30 40 9.0 3\n")
    (tmp_path / "s.yaml").write_text(
        "sources:\n"
        "  - {name: affwild2, kind: affwild2, root: abaw, tasks: [VA, EXPR], thin: {VA: 5}}\n"
        "  - {name: expw, kind: expw, root: expw}\n")
    manifest = index_sources(tmp_path / "s.yaml")
    by_id = {it.video_id: it for it in manifest.items}
    assert sorted(by_id) == ["expw/vid_s/0", "vid_s"]       # Aff-Wild2 ids stay bare, no collision
    item, truth = by_id["vid_s"], tree.truth["vid_s"]
    assert item.dataset == "affwild2" and item.video_path is not None
    assert np.array_equal(item.labels.expr, truth["expr"])  # EXPR and VA of the same frames, merged
    every_5th = np.arange(12) % 5 == 0
    assert np.allclose(item.labels.va[every_5th], truth["va"][every_5th], equal_nan=True)
    assert np.isnan(item.labels.va[~every_5th]).all()
    assert (item.labels.au == -1).all()                     # AU not among this source's tasks


def test_still_and_clip_items_through_the_frame_reader(tmp_path):
    """Extraction reads these items: a still is one face crop from its box, without audio."""
    from PIL import Image

    from emokd.extract.faces import iter_face_batches
    from emokd.extract.timing import audio_ok, probe_item

    root = _affectnet(tmp_path, [f"1/a.jpg,20,10,40,40,{LM},3,0.1,0.2\n"])
    image = np.zeros((80, 100, 3), np.uint8)
    image[10:50, 20:60] = (250, 30, 30)                      # the face box is all red
    (root / "Manually_Annotated_Images" / "1").mkdir()
    Image.fromarray(image).save(root / "Manually_Annotated_Images" / "1" / "a.jpg", quality=95)
    item = read_affectnet(root)[0][0]
    probe = probe_item(item)
    [batch] = list(iter_face_batches(item, probe, batch_size=8, crop_size=32))
    assert batch.index.tolist() == [0] and batch.faces.shape == (1, 32, 32, 3)
    assert batch.face_ok.tolist() == [True]
    assert probe.info is None and audio_ok(None, batch.index).tolist() == [False]   # no media: no audio
    assert batch.faces[0, 4:28, 4:28, 0].min() > 200 and batch.faces[0, 4:28, 4:28, 1].max() < 80


@pytest.mark.slow
def test_extract_features_on_a_sources_file(tmp_path):
    """`emokd extract-features sources.yaml` with the default encoders: stills and a clip in one cache."""
    import subprocess
    import sys

    from PIL import Image

    from emokd.cache.store import FeatureCache
    from emokd.errors import WeightsError
    from emokd.models import weights as store

    try:
        store.asset_path("soundnet8"), store.asset_path("fer_pyemotion")
    except WeightsError as exc:
        pytest.skip(f"default weights not available here: {exc}")
    rng = np.random.default_rng(0)

    def image(path, size=(96, 96)):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)

    _affectnet(tmp_path, [f"1/a.jpg,10,10,60,60,{LM},1,0.5,-0.2\n"])
    image(tmp_path / "Manually_Annotated_Images" / "1" / "a.jpg")
    (tmp_path / "expw" / "label").mkdir(parents=True)
    (tmp_path / "expw" / "label" / "label.lst").write_text("x.jpg 0 5 5 60 60 50.0 3\nx.jpg 1 10 40 90 70 3.0 6\n")
    image(tmp_path / "expw" / "image" / "origin" / "x.jpg")
    frames = {f"{k:05d}": {"valence": k, "arousal": -k, "landmarks": [[20, 20], [80, 85]]} for k in range(3)}
    clip = _afew_clip(tmp_path / "afew", "001", frames)
    for k in range(3):
        image(clip / f"{k:05d}.png", (100, 120))
    (tmp_path / "sources.yaml").write_text(
        "sources:\n  - {kind: affectnet, root: .}\n  - {kind: expw, root: expw}\n  - {kind: afew_va, root: afew}\n")
    url = tmp_path / "cache.zarr"
    done = subprocess.run([sys.executable, "-m", "emokd", "extract-features", str(tmp_path / "sources.yaml"),
                           "--cache", str(url), "--workers", "1", "--no-progress"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    cache = FeatureCache.open(str(url))
    assert cache.video_ids() == ["afew_va/001", "affectnet/1/a", "expw/x/0", "expw/x/1"]
    assert {v: cache.n_frames(v) for v in cache.video_ids()} == {"afew_va/001": 3, "affectnet/1/a": 1,
                                                                  "expw/x/0": 1, "expw/x/1": 1}
    for vid in cache.video_ids():
        arrays = cache.read_video(vid)
        assert arrays["face_ok"].all() and not arrays["audio_ok"].any()
    faces = [cache.read_video(v)["face"][0] for v in ("expw/x/0", "expw/x/1")]
    assert not np.array_equal(faces[0], faces[1])           # two faces of one image, two crops
    assert cache.read_labels("expw/x/1")["expr"].tolist() == [0]
    assert np.allclose(cache.read_labels("afew_va/001")["va"], [[0, 0], [0.1, -0.1], [0.2, -0.2]])
    assert cache.read_labels("affectnet/1/a")["dataset"] == "affectnet"
