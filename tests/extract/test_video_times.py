"""Frame times survive a bad timestamp (docs/datasets.md, "What emokd does with each quirk"): a
duplicated or missing stamp is repaired where it occurs, counted, logged and shown by `cache info`;
k / fps only when the times are unusable as a whole."""

import numpy as np
import pytest

from emokd.cache import FeatureCache
from emokd.cache.report import cache_info, format_info
from emokd.index.frame_times import repair_stamps
from emokd.index.probe import PTS_CONTAINER, PTS_INDEX_BAD, probe_video
from emokd.testing import quirky_videos as quirky
from media_support import assert_rows_equal, default_weights, extract_one

# a phone's variable frame rate: 25 fps, a 2 s pause, 25 fps again
TIMES_MS = [0, 40, 80, 120, 160, 2160, 2200, 2240, 2280, 2320, 2360, 2400, 2440, 2480]


@pytest.fixture(scope="module", autouse=True)
def weights():
    default_weights()


def test_one_duplicated_stamp_is_repaired_and_the_rows_are_those_of_the_true_times(tmp_path):
    true = quirky.write_vfr(tmp_path / "true.mkv", TIMES_MS)
    glitch = quirky.remux(true, tmp_path / "glitch.mkv", retime=quirky.duplicate_stamp(TIMES_MS, 3))
    info = probe_video(glitch)
    assert info.pts_source == PTS_CONTAINER and info.repaired == [3]
    np.testing.assert_allclose(info.pts, np.array(TIMES_MS) / 1000, atol=1e-9)
    got, attrs, result = extract_one(glitch, tmp_path)
    want, _, _ = extract_one(true, tmp_path)
    assert_rows_equal(got, want)                   # pts, and the audio windows that follow from them
    np.testing.assert_allclose(got["pts"], np.array(TIMES_MS) / 1000, atol=1e-9)
    assert attrs["pts_repairs"] == 1 and attrs["pts_repaired_frames"] == [3]
    assert any("1 duplicated or missing frame timestamps repaired from their neighbours (frames 3)" in line
               for line in result["log"])
    assert result["media"]["pts_repairs"] == 1
    text = format_info(cache_info(FeatureCache.open(str(tmp_path / "glitch.mkv.zarr"))))
    assert "repairs      1 videos with repaired frame timestamps (1 stamps): v (1)" in text


def test_a_duplicate_after_the_pause_and_at_the_end(tmp_path):
    true = quirky.write_vfr(tmp_path / "true.mkv", TIMES_MS)
    for k in (6, len(TIMES_MS) - 1):
        glitch = quirky.remux(true, tmp_path / f"glitch{k}.mkv", retime=quirky.duplicate_stamp(TIMES_MS, k))
        info = probe_video(glitch)
        assert info.repaired == [k]
        np.testing.assert_allclose(info.pts, np.array(TIMES_MS) / 1000, atol=1e-9)


@pytest.mark.parametrize("pts, dts, want, repaired", [
    ([0, 40, 80, 80, 160], None, [0, 40, 80, 120, 160], [3]),           # repeated previous stamp
    ([0, 40, 120, 120, 160], None, [0, 40, 80, 120, 160], [2]),         # next stamp written early
    ([0, 40, 80, 80, 80, 200], None, [0, 40, 80, 120, 160, 200], [3, 4]),
    ([0, 0, 80, 120], None, [0, 40, 80, 120], [1]),                     # at the start: frame 0 keeps it
    ([0, 40, 80, 80], None, [0, 40, 80, 120], [3]),                     # at the end: the last spacing
    ([0, 40, None, 120, 160], [0, 40, 80, 120, 160], [0, 40, 80, 120, 160], []),   # dts stands in
    ([0, 40, None, 120, 160], None, [0, 40, 80, 120, 160], [2]),        # interpolated by position
    ([0, 80, 40, 160, 120], None, [0, 40, 80, 120, 160], []),           # reordered (B-frames): fine
])
def test_repair_rules(pts, dts, want, repaired):
    stamps = repair_stamps(pts, dts or [None] * len(pts))
    np.testing.assert_allclose(stamps.values, want)
    assert stamps.repaired == repaired


def test_unusable_times_as_a_whole_fall_back_to_index_over_fps():
    assert repair_stamps([5, 5, 5, 5], [None] * 4).values is None
    assert repair_stamps([None, None, None, 7], [None] * 4).values is None
    assert PTS_INDEX_BAD.startswith("index/fps")
