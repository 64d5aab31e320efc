"""The test lists `emokd predict` reads: parsed by emokd.index.abaw (the one parser of ABAW test lists)."""

import pytest

from emokd.errors import DataError
from emokd.index.abaw import frame_of_entry, read_test_frames, read_test_list


def write(path, *lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_frame_entries_give_video_and_zero_based_frame(tmp_path):
    path = write(tmp_path / "t.txt", "image", "v1/00001.jpg", "v1/00010.jpg", "", "v2_left/00003.png,extra")
    assert read_test_frames(path) == [("v1/00001.jpg", "v1", 0), ("v1/00010.jpg", "v1", 9),
                                      ("v2_left/00003.png", "v2_left", 2)]
    assert read_test_list(path) == ["v1/00001.jpg", "v1/00010.jpg", "v2_left/00003.png"]   # the same entries
    assert frame_of_entry("a/b/00002.jpg") == ("a/b", 1)
    assert frame_of_entry("v1\\00002.jpg") == ("v1", 1)
    assert frame_of_entry("v1/00000.jpg") is None and frame_of_entry("v1") is None


def test_a_header_of_any_name_and_no_header(tmp_path):
    assert read_test_frames(write(tmp_path / "a.txt", "frame_path", "v/00002.jpg")) == [("v/00002.jpg", "v", 1)]
    assert read_test_frames(write(tmp_path / "b.txt", "v/00001.jpg", "v/00002.jpg")) == [
        ("v/00001.jpg", "v", 0), ("v/00002.jpg", "v", 1)]           # no header: the first frame is kept


def test_a_list_of_video_names_means_every_frame_of_each(tmp_path):
    path = write(tmp_path / "names.txt", "video", "clip_a", "sub/clip_b.mp4", "clip_c.AVI")
    assert read_test_frames(path) == [("clip_a", "clip_a", None), ("sub/clip_b.mp4", "sub/clip_b", None),
                                      ("clip_c.AVI", "clip_c", None)]
    assert read_test_frames(write(tmp_path / "bare.txt", "v1", "v2")) == [("v1", "v1", None), ("v2", "v2", None)]


def test_video_names_expand_to_one_row_per_frame():
    from emokd.train.predict import expand_videos

    rows = list(expand_videos([("v", "v", None), ("w/00002.jpg", "w", 1)], {"v": (0, 3), "w": (3, 5)}))
    assert rows == [("v/00001.jpg", "v", 0), ("v/00002.jpg", "v", 1), ("v/00003.jpg", "v", 2), ("w/00002.jpg", "w", 1)]


def test_bad_lists_are_one_line_errors_naming_the_line(tmp_path):
    path = write(tmp_path / "bad.txt", "image", "v/00001.jpg", "v/00000.jpg")
    with pytest.raises(DataError, match=r"bad.txt:3: 'v/00000.jpg' is not <video>/<NNNNN>.jpg with NNNNN >= 1"):
        read_test_frames(path)
    with pytest.raises(DataError, match="bad.txt:3: 'v3' is not .* all frame paths or all video names"):
        read_test_frames(write(path, "image", "v/00001.jpg", "v3"))
    with pytest.raises(DataError, match="bad.txt:3: 'v/00002.jpg' is a frame path, but the list starts with video"):
        read_test_frames(write(path, "video", "v3", "v/00002.jpg"))
    with pytest.raises(DataError, match="no image lines after its header"):
        read_test_frames(write(tmp_path / "empty.txt", "image"))
    with pytest.raises(DataError, match="missing.txt: cannot read"):
        read_test_frames(tmp_path / "missing.txt")
