"""`emokd inspect`: frame picking, waveform envelope, crop files by 1-based name, gathering from a
real cache + generated video, the PNG, and the CLI's one-line errors."""

from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from emokd.cache import FeatureCache
from emokd.cli import main
from emokd.config import to_dict
from emokd.errors import DataError
from emokd.inspect.gather import gather, read_crop_files
from emokd.inspect.plot import InspectData, pick_frames, render_inspect, waveform_envelope
from emokd.inspect.predictions import run_predictions
from emokd.index.probe import probe_video
from emokd.testing.videos import make_video
from emokd.train.recipes.base import build_recipe
from emokd.train.runs import RunDir

ENCODERS = [
    {"name": "fer_default", "kind": "face", "output_dim": 4, "layer": "fc1",
     "input_spec": {"size": 48, "channels": 1}, "weights_sha256": "a" * 64},
    {"name": "soundnet8", "kind": "audio", "output_dim": 3, "layer": "conv8",
     "input_spec": {"sample_rate": 22050, "window_s": 10.0}, "weights_sha256": "b" * 64},
]
SETTINGS = {"crop_size": 32, "sample_rate": 22050, "window_s": 10.0}


def test_pick_frames_spreads_evenly_with_both_ends():
    assert pick_frames(45, 5).tolist() == [0, 11, 22, 33, 44]
    assert pick_frames(3, 10).tolist() == [0, 1, 2]
    assert pick_frames(7, 1).tolist() == [0]
    assert pick_frames(0, 4).tolist() == []


def test_waveform_envelope_hand_computed():
    signal = np.array([0, 1, -2, 3, -4, 5, 0, 0], np.float32)  # 8 samples at 4 Hz = 2 s
    times, low, high = waveform_envelope(signal, 4, t_end=3.0, bins=3)  # padded to 12 samples
    assert low.tolist() == [-2, -4, 0] and high.tolist() == [3, 5, 0]
    np.testing.assert_allclose(times, [0.5, 1.5, 2.5])


def test_crop_files_are_one_based(tmp_path):
    for name, value in (("00001.jpg", 10), ("00003.jpg", 200)):
        Image.fromarray(np.full((20, 20, 3), value, np.uint8)).save(tmp_path / name, quality=100)
    crops, ok = read_crop_files(tmp_path, np.array([0, 1, 2]), 16)
    assert ok.tolist() == [True, False, True]
    assert crops.shape == (3, 16, 16, 3)
    assert abs(crops[0].mean() - 10) < 2 and crops[1].max() == 0 and abs(crops[2].mean() - 200) < 2


@pytest.fixture()
def cached_video(tmp_path):
    """A generated 45-frame clip, crop files whose grey level is 5 x frame index, and its cache."""
    video = make_video(tmp_path / "clip.mp4", 45, fps=30, audio="clicks")
    info = probe_video(video.path)
    crop_dir = tmp_path / "cropped_aligned" / "clip"
    crop_dir.mkdir(parents=True)
    for k in range(45):
        if k != 22:  # a gap: frame 22 has no crop
            Image.fromarray(np.full((40, 40, 3), 5 * k, np.uint8)).save(crop_dir / f"{k + 1:05d}.jpg", quality=100)
    cache = FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {}, ENCODERS)
    for vid, face_source in (("clip", "crops"), ("clip_plain", "none")):
        writer = cache.begin_video(vid, 45, {"fps": 30.0, "n_frames": 45, "face_source": face_source,
                                             "source": {"path": str(video.path)}})
        writer.write("pts", 0, info.pts)
        writer.write("face", 0, np.zeros((45, 4), np.float16))
        writer.write("audio", 0, np.zeros((45, 3), np.float16))
        writer.write("face_ok", 0, np.arange(45) != 22)
        writer.write("audio_ok", 0, np.ones(45, bool))
        writer.commit()
    expr = (np.arange(45) % 8).astype(np.int8)
    cache.write_labels("clip", np.full((45, 2), 0.5, np.float32), expr, np.zeros((45, 12), np.int8), "train")
    item = SimpleNamespace(video_id="clip", video_path=video.path, crop_dir=crop_dir, labels=None, split="train",
                           dataset="affwild2")
    return FeatureCache.open(tmp_path / "c.zarr"), item, info, tmp_path


def test_gather_uses_cache_times_crop_files_and_media_audio(cached_video):
    cache, item, info, _ = cached_video
    data = gather(cache, "clip", item=item, n_crops=5)
    np.testing.assert_array_equal(data.pts, info.pts)
    np.testing.assert_array_equal(data.frame_end, info.frame_end)
    assert data.crop_index.tolist() == [0, 11, 22, 33, 44]
    assert data.crop_face_ok.tolist() == [True, True, False, True, True]
    means = data.crops.reshape(5, -1).mean(axis=1)
    np.testing.assert_allclose(means[[0, 1, 3, 4]], [0, 55, 165, 220], atol=2)
    assert data.crops.shape == (5, 32, 32, 3)  # the cache's crop size
    assert len(data.signal) >= int(round(1.5 * 22050)) - 1  # 45 frames at 30 fps = 1.5 s of sound
    assert data.labels["expr"].tolist() == (np.arange(45) % 8).tolist()
    assert data.face_ok.sum() == 44


def test_render_writes_png_with_and_without_labels(cached_video, tmp_path):
    cache, item, _, _ = cached_video
    data = gather(cache, "clip", item=item, n_crops=4)
    data.predictions = {"va": np.zeros((45, 2)), "expr": np.zeros(45, int), "au": np.full((45, 12), 0.3)}
    out = render_inspect(data, tmp_path / "a.png")
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 1000 and image.size[1] > 600
    bare = InspectData("x", np.arange(3) / 10, np.arange(1, 4) / 10, np.array([0, 2]),
                       np.zeros((2, 8, 8, 3), np.uint8), np.array([True, False]))
    with Image.open(render_inspect(bare, tmp_path / "b.png")) as image:
        assert image.size[1] < 500  # faces and audio rows only


def test_cli_writes_png_and_errors_are_one_line(cached_video):
    cache, _, _, tmp_path = cached_video
    runner = CliRunner()
    out = tmp_path / "plain.png"
    done = runner.invoke(main, ["inspect", "clip_plain", "--cache", cache.url, "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert out.is_file() and "clip_plain, 45 frames" in done.output
    # crops were used at extraction: without --dataset inspect cannot find them
    done = runner.invoke(main, ["inspect", "clip", "--cache", cache.url, "--out", str(out)])
    assert done.exit_code == 2 and "pass --dataset ROOT" in done.output
    assert len(done.output.strip().splitlines()) == 1 and "Traceback" not in done.output
    done = runner.invoke(main, ["inspect", "nope", "--cache", cache.url, "--out", str(out)])
    assert done.exit_code == 2 and "no complete video 'nope'" in done.output
    done = runner.invoke(main, ["inspect", "clip", "--cache", str(tmp_path / "missing.zarr"), "--out", str(out)])
    assert done.exit_code == 2 and "missing.zarr" in done.output


def test_gather_refuses_a_changed_source_file(cached_video):
    cache, item, _, tmp_path = cached_video
    other = make_video(tmp_path / "other.mp4", 30, fps=30, audio=None)
    item.video_path = other.path
    with pytest.raises(DataError, match="has 30 frames, the cache holds 45"):
        gather(cache, "clip", item=item)


class _RecordingDetector:
    """Reads the index drawn on each frame it is shown; finds no face."""

    def __init__(self):
        self.seen = []

    def detect(self, image):
        from emokd.testing.videos import read_frame_index

        self.seen.append(read_frame_index(image))
        return SimpleNamespace(boxes=np.zeros((0, 4)), scores=np.zeros(0), landmarks=np.zeros((0, 5, 2)))


def test_detector_path_sees_exactly_the_shown_frames(tmp_path):
    from emokd.index.probe import probe_video
    from emokd.inspect.gather import detector_crops

    video = make_video(tmp_path / "v.mp4", 40, fps=25, audio=None)
    detector = _RecordingDetector()
    crops, ok = detector_crops(video.path, probe_video(video.path), pick_frames(40, 4), 16, detector, batch_size=8)
    assert detector.seen == [0, 13, 26, 39]  # decoded frame k shows index k: no off-by-one, no extra work
    assert not ok.any() and crops.shape == (4, 16, 16, 3)


def test_cli_draws_a_runs_predictions_of_the_tasks_its_recipe_predicts(cached_video):
    cache, _, _, tmp_path = cached_video
    recipe = build_recipe("jeong2022", {"lstm_hidden": 8, "extractor": [8], "heads": [8], "discriminator": [4]})
    model = recipe.build_model({"face": 4, "audio": 3, "window": 3, "stride": 2})
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.save_checkpoint("best.pt", {"model": model.state_dict(), "recipe": recipe.name, "epoch": 0,
                                    "recipe_options": to_dict(recipe.config), "net_config": to_dict(model.config)})
    predictions = run_predictions(run.path, cache, "clip_plain")
    assert sorted(predictions) == ["au", "expr", "va"]
    assert predictions["au"].shape == (45, 12) and ((predictions["au"] > 0) & (predictions["au"] < 1)).all()
    assert predictions["expr"].dtype.kind == "i" and predictions["va"].shape == (45, 2)
    out = tmp_path / "pred.png"
    done = CliRunner().invoke(main, ["inspect", "clip_plain", "--cache", cache.url, "--run", str(run.path),
                                     "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert out.is_file() and "predictions of run" in done.output
