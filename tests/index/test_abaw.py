"""Annotation file formats: headers, sentinels, bad lines, MTL rows, test lists, label CSVs."""

import numpy as np
import pytest

from emokd.constants import AU_NAMES, EXPR_CLASSES
from emokd.errors import DataError
from emokd.index.abaw import FrameLabels, fit_to_frames, read_label_file, read_mtl_file, read_task_file, read_test_list, videos_of_test_list


def write(path, *lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_va_file_header_and_sentinel(tmp_path):
    path = write(tmp_path / "v.txt", "valence,arousal", "0.5,-0.25", "-5,-5", "-1,1")
    va, problems = read_task_file(path, "VA")
    assert problems == []
    np.testing.assert_array_equal(va[0], [0.5, -0.25])
    assert np.isnan(va[1]).all()
    np.testing.assert_array_equal(va[2], [-1, 1])
    assert va.dtype == np.float32 and va.shape == (3, 2)


def test_expr_and_au_sentinels(tmp_path):
    expr, problems = read_task_file(write(tmp_path / "e.txt", ",".join(EXPR_CLASSES), "0", "-1", "7", "4"), "EXPR")
    assert problems == [] and expr.tolist() == [0, -1, 7, 4] and expr.dtype == np.int8
    au_lines = [",".join(AU_NAMES), ",".join(["1"] * 12), ",".join(["-1"] * 12), "0,1,0,1,0,1,0,1,0,1,0,-1"]
    au, problems = read_task_file(write(tmp_path / "a.txt", *au_lines), "AU")
    assert problems == [] and au.shape == (3, 12)
    assert au[0].tolist() == [1] * 12 and au[1].tolist() == [-1] * 12 and au[2, -1] == -1 and au[2, 1] == 1


def test_bad_lines_name_file_and_line_and_leave_the_frame_unlabelled(tmp_path):
    path = write(tmp_path / "bad.txt", "valence,arousal", "0.1,0.2", "0.3", "x,0.1", "2.0,0.0", "0.4,0.5")
    va, problems = read_task_file(path, "VA")
    assert len(va) == 5
    np.testing.assert_allclose(va[[0, 4]], [[0.1, 0.2], [0.4, 0.5]])
    assert np.isnan(va[1:4]).all()
    assert [p.split(": ")[0] for p in problems] == [f"{path}:3", f"{path}:4", f"{path}:5"]
    assert "expected 2 field(s) for VA, got 1" in problems[0]
    assert "out of range" in problems[2]


def test_au_value_out_of_range_and_expr_non_integer(tmp_path):
    au, problems = read_task_file(write(tmp_path / "a.txt", "h", ",".join(["2"] * 12)), "AU")
    assert au[0].tolist() == [-1] * 12 and problems[0].startswith(f"{tmp_path / 'a.txt'}:2")
    expr, problems = read_task_file(write(tmp_path / "e.txt", "h", "8", "2.5", "3"), "EXPR")
    assert expr.tolist() == [-1, -1, 3] and len(problems) == 2


def test_file_without_header_is_reported_not_lost(tmp_path):
    expr, problems = read_task_file(write(tmp_path / "e.txt", "3", "4"), "EXPR")
    assert expr.tolist() == [3, 4] and "no header" in problems[0]


def test_line_count_differs_from_frame_count(tmp_path):
    path = tmp_path / "v.txt"
    values = np.arange(10, dtype=np.float32).reshape(5, 2) / 10
    fitted, problems = fit_to_frames(values, 3, path, "VA")
    np.testing.assert_array_equal(fitted, values[:3])
    assert problems == [f"{path}: 5 label lines for 3 frames; the last 2 ignored"]
    fitted, problems = fit_to_frames(values, 7, path, "VA")
    assert problems == [] and np.isnan(fitted[5:]).all() and np.array_equal(fitted[:5], values)


def test_mtl_rows_partial_labels_and_bad_rows(tmp_path):
    header = "image,valence,arousal,expression,aus"
    au = ",".join(["0"] * 11 + ["1"])
    path = write(tmp_path / "train_set.txt", header,
                 f"vid_x/00001.jpg,0.1,0.2,3,{au}",
                 f"vid_x/00004.jpg,-5,-5,5,{au}",            # EXPR + AU only
                 f"vid_x/00005.jpg,0.3,0.4,-1,{','.join(['-1'] * 12)}",   # VA only
                 f"vid_y_left/00002.jpg,0.5,0.6,2,{au}",
                 "vid_x/00006.jpg,0.1,0.2,3",                 # wrong field count
                 f"vid_x/00000.jpg,0.1,0.2,3,{au}")           # not a 1-based frame
    out, problems = read_mtl_file(path)
    assert sorted(out) == ["vid_x", "vid_y_left"]
    x = out["vid_x"]
    assert x.n == 5
    np.testing.assert_allclose(x.va[0], [0.1, 0.2])
    assert np.isnan(x.va[[1, 2, 3]]).all() and x.expr.tolist() == [3, -1, -1, 5, -1]
    assert x.au[3].tolist() == [0] * 11 + [1] and x.au[4].tolist() == [-1] * 12
    np.testing.assert_allclose(out["vid_y_left"].va[1], [0.5, 0.6])
    assert [p.split(": ")[0] for p in problems] == [f"{path}:6", f"{path}:7"]


def test_test_list_header_and_videos(tmp_path):
    entries = read_test_list(write(tmp_path / "t.txt", "image", "v1/00001.jpg", "v1/00002.jpg", "v2_left/00001.jpg"))
    assert entries == ["v1/00001.jpg", "v1/00002.jpg", "v2_left/00001.jpg"]
    assert videos_of_test_list(entries) == ["v1", "v2_left"]
    assert read_test_list(write(tmp_path / "names.txt", "v3", "v4")) == ["v3", "v4"]


def test_generic_label_file(tmp_path):
    path = write(tmp_path / "labels.csv", "frame,valence,arousal,expression,AU12,au6",
                 "0,0.5,0.1,4,1,0", "1,-5,-5,-1,-1,1", "2,,,6,,", "3,0.2")
    labels, problems = read_label_file(path)
    assert labels.n == 4
    np.testing.assert_allclose(labels.va[0], [0.5, 0.1])
    assert np.isnan(labels.va[1:]).all()
    assert labels.expr.tolist() == [4, -1, 6, -1]
    au12, au6 = AU_NAMES.index("AU12"), AU_NAMES.index("AU6")
    assert labels.au[0, au12] == 1 and labels.au[0, au6] == 0 and labels.au[1, au6] == 1
    assert labels.au[0, 0] == -1
    assert problems == [f"{path}:5: expected 6 fields, got 2; frame 3 unlabelled"]
    with pytest.raises(DataError, match="names no label column"):
        read_label_file(write(tmp_path / "x.csv", "a,b", "1,2"))


def test_frame_labels_fill_and_counts():
    a = FrameLabels.empty(3)
    a.va[0] = [0.1, 0.2]
    a.expr[1] = 2
    b = FrameLabels.empty(3)
    b.va[0] = [0.5, 0.5]
    b.va[2] = [0.3, 0.3]
    b.au[2] = 1
    b.expr[1] = 3
    conflicts = a.fill_from(b)
    assert conflicts == 2                                  # frame 0 VA and frame 1 EXPR disagree
    np.testing.assert_allclose(a.va[0], [0.1, 0.2])       # first source kept
    np.testing.assert_allclose(a.va[2], [0.3, 0.3])       # missing filled
    assert a.expr.tolist() == [-1, 2, -1] and a.au[2].tolist() == [1] * 12
    assert a.counts() == {"VA": 2, "EXPR": 1, "AU": 1}
