"""AffectNet, ExpW and AFEW-VA readers on small files written here, and the sources file."""

import json

import numpy as np
import pytest

from emokd.errors import DataError
from emokd.pipeline.datasets.affectnet import read_affectnet
from emokd.pipeline.datasets.afew_va import read_afew_va
from emokd.pipeline.datasets.expw import read_expw

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
    _afew_clip(tmp_path, "002", {"00000": {"valence": 3, "arousal": 4, "landmarks": landmarks}}, ".jpg")
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
