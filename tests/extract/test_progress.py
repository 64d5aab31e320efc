"""Extraction progress: frames that advance within a video, a total that is reached, failed
videos' frames counted as failed; plain lines without escape codes when not on a terminal."""

import io
import os
import re
import subprocess
import sys

import pytest

from emokd.extract.progress import FrameProgress
from emokd.testing.videos import make_video


def test_frames_advance_within_a_video_and_end_at_the_total():
    out = io.StringIO()
    bar = FrameProgress({"a": 100, "b": 50, "c": 30}, videos_total=4, videos_skipped=1, terminal=False,
                        stream=out, interval=3600)
    bar.event((0.0, {"video_id": "a", "frames": 64}))          # a worker's batch, inside video a
    assert (bar.done, bar.failed, bar.total) == (64, 0, 180)
    bar.frames("b", 20)
    bar.finished("b", "failed")                                 # all of b's frames failed, none done
    assert (bar.done, bar.failed, bar.total) == (64, 50, 180)
    bar.finished("a", "done", 97)                               # decoded 97, the index said 100
    assert (bar.done, bar.total) == (97, 177)
    bar.frames("c", 35)                                         # more than the index knew
    bar.finished("c", "done", 35)
    assert (bar.done, bar.failed, bar.total) == (132, 50, 182) and bar.done + bar.failed == bar.total
    bar.frames("a", 5)                                          # a late event of a finished video
    assert bar.done == 132
    bar.close()
    line = out.getvalue().strip().splitlines()[-1]
    assert line.startswith("extract: 182/182 frames (100.0 %), 4/4 videos, 50 frames failed (1 videos)")
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_plain_lines_come_at_a_steady_rhythm():
    import time

    out = io.StringIO()
    bar = FrameProgress({"a": 10}, videos_total=1, terminal=False, stream=out, interval=0.05)
    time.sleep(0.3)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3 and all(line.startswith("extract: 0/10 frames") for line in lines)


@pytest.mark.slow
def test_extract_features_piped_to_a_file_has_no_escape_codes_and_libav_goes_to_the_log(tmp_path):
    from emokd.models import weights as store
    from emokd.errors import WeightsError

    try:
        store.fetch(["soundnet8", "fer_pyemotion"])
    except WeightsError as exc:
        pytest.skip(f"default weights not available here: {exc}")
    make_video(tmp_path / "clips" / "ok.mp4", 160, 25, (48, 48), audio="speechlike")
    cut = make_video(tmp_path / "clips" / "cut.mkv", 60, 25, (48, 48), audio="clicks").path
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size * 2 // 3])       # decodes part, with libav errors
    (tmp_path / "clips" / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    (tmp_path / "videos.csv").write_text("video\nclips/ok.mp4\nclips/cut.mkv\nclips/bad.mp4\n")
    log = tmp_path / "console.txt"
    with open(log, "w") as console:
        done = subprocess.run([sys.executable, "-m", "emokd", "extract-features", "videos.csv", "--cache", "c.zarr",
                               "--workers", "1", "--face-source", "whole-frame", "--device", "cpu", "--batch-size", "8",
                               "--video-decoder", "decord"],  # libav inside decord writes to fd 2; PyAV keeps it quiet
                              cwd=tmp_path, stdout=console, stderr=subprocess.STDOUT, timeout=300,
                              env=dict(os.environ, EMOKD_PROGRESS_S="0.05"))
    text = log.read_text()
    assert done.returncode in (0, 1), text
    assert "\x1b" not in text and "\r" not in text
    lines = [line for line in text.splitlines() if line.startswith("extract: ")]
    assert lines and "frames (100.0 %)" in lines[-1], text
    counts = [tuple(map(int, re.match(r"extract: (\d+)/\d+ frames .*?, (\d+)/3 videos", line).groups()))
              for line in lines]
    within_a_video = [(a, b) for a, b in zip(counts, counts[1:]) if b[0] > a[0] and b[1] == a[1]]
    assert within_a_video, text        # frames advanced while no video finished
    assert text.count("cannot open video") == 2        # the index's one-line summary and the failure, once each
    assert "Read error" not in text and "partial file" not in text          # libav's own lines
    extract_log = "".join(p.read_text() for p in (tmp_path / "c.zarr.emokd").glob("extract-*.log"))  # beside
    assert "emokd.libav" in extract_log


def test_on_a_terminal_one_bar_that_reaches_its_total():
    out = io.StringIO()
    bar = FrameProgress({"a": 40, "b": 20}, videos_total=2, terminal=True, stream=out)
    bar.frames("a", 32)
    assert bar._bar.n == 32 and bar._bar.total == 60
    bar.finished("a", "done", 40)
    bar.finished("b", "failed")
    bar.close()
    assert bar._bar.n == bar._bar.total == 60
    assert "videos 2/2, failed 1 (20 frames)" in out.getvalue()
