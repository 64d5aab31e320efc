"""ExtractConfig, the fingerprint settings and the per-video task's fault handling (no Dask cluster)."""

from pathlib import Path

import numpy as np
import pytest

from emokd.config import load_config
from emokd.errors import ConfigError, WeightsError
from emokd.extract.config import ExtractConfig
from emokd.extract.task import _describe, _face_source
from emokd.index.manifest import VideoItem


def test_defaults_and_resolved_audio_mode():
    from emokd.models.soundnet import SOUNDNET_DEFAULT_MODE

    cfg = ExtractConfig().resolved()
    assert (cfg.face_encoder, cfg.audio_encoder, cfg.audio_layer) == ("fer_pyemotion", "soundnet8", "conv8")
    assert (cfg.crop_size, cfg.sample_rate, cfg.window_s, cfg.batch_size) == (112, 22050, 10.0, 64)
    assert cfg.audio_mode == {"trunk": "shared-trunk", "window": "per-window"}[SOUNDNET_DEFAULT_MODE]
    assert cfg.window_samples == 220500
    assert ExtractConfig(audio_mode="per-window").resolved().audio_mode == "per-window"


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "extract.yaml"
    path.write_text("window_s: 5.0\nbatch_size: 16\naudio_mode: per-window\n")
    cfg = load_config(ExtractConfig, path, {"batch_size": 8, "workers": None}).resolved()
    assert (cfg.window_s, cfg.batch_size, cfg.workers, cfg.audio_mode) == (5.0, 8, 1, "per-window")
    assert cfg.window_samples == 110250
    path.write_text("window: 5.0\n")
    with pytest.raises(ConfigError, match="unknown key.*window"):
        load_config(ExtractConfig, path)


@pytest.mark.parametrize("field, value, words", [
    ("audio_mode", "fast", "audio_mode"), ("face_source", "eyes", "face_source"),
    ("sample_rate", 16000, "sample_rate"), ("batch_size", 0, "batch_size"), ("window_s", 0.0, "window_s"),
    ("limit", 0, "limit"), ("audio_track", -1, "audio_track"), ("video_decoder", "ffmpeg", "video_decoder"),
])
def test_bad_values_name_the_setting(field, value, words):
    with pytest.raises(ConfigError, match=words):
        ExtractConfig(**{field: value}).resolved()


def _item(tmp_path, crops: bool, boxes: bool = False) -> VideoItem:
    crop_dir = None
    if crops:
        crop_dir = tmp_path / "cropped_aligned" / "v"
        crop_dir.mkdir(parents=True, exist_ok=True)
        (crop_dir / "00001.jpg").write_bytes(b"")  # listed by name; never read here
    return VideoItem("v", tmp_path / "v.mp4", crop_dir, None, "train",
                     face_boxes=np.zeros((3, 4)) if boxes else None)


def test_face_source_per_item(tmp_path):
    with_crops, without = _item(tmp_path, True), _item(tmp_path / "b", False)
    assert _face_source(with_crops, "auto", "1-based") == ("crops", None)
    assert _face_source(without, "auto", "1-based") == ("detector", None)
    assert _face_source(without, "crops", "1-based")[0] == "none"
    assert _face_source(_item(tmp_path / "c", False, boxes=True), "auto", "1-based") == ("crops", None)
    assert _face_source(with_crops, "detector", "1-based") == ("detector", None)
    assert _face_source(with_crops, "whole-frame", "1-based") == ("whole-frame", None)
    gone = VideoItem("g", None, tmp_path / "missing", None, "train")  # folder named but absent
    source, note = _face_source(gone, "auto", "1-based")
    assert source == "detector" and note == f"crop folder {tmp_path / 'missing'} not found; faces from the detector"


def test_error_text_names_the_file_once(tmp_path):
    from emokd.errors import DataError

    item = _item(tmp_path, False)
    assert _describe(item, DataError(f"{item.video_path}: cannot open video")) == f"{item.video_path}: cannot open video"
    assert _describe(item, ValueError("bad shape")) == f"{item.video_path}: ValueError: bad shape"


def test_a_dataset_without_videos_is_one_line_and_writes_nothing(tmp_path):
    from click.testing import CliRunner

    from emokd.cli import main

    (tmp_path / "empty").mkdir()
    cache = tmp_path / "cache.zarr"
    result = CliRunner().invoke(main, ["extract-features", str(tmp_path / "empty"), "--cache", str(cache)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {tmp_path / 'empty'}: no video or image item found "
        f"(see `emokd index {tmp_path / 'empty'} --problems`)"]
    assert not cache.exists()


@pytest.fixture(scope="module")
def encoders():
    from emokd.extract.encoders import load_encoders

    try:
        return load_encoders(ExtractConfig().resolved())
    except WeightsError as exc:
        pytest.skip(f"default weights not available: {exc}")


def test_fingerprint_settings_hold_every_feature_setting(encoders):
    from emokd.extract.encoders import fingerprint_settings

    cfg = ExtractConfig().resolved()
    settings = fingerprint_settings(cfg, encoders)
    assert set(settings) == {"face_encoder", "audio_encoder", "face_source", "face_detector", "crop_size",
                             "sample_rate", "window_s", "audio_mode", "audio_track", "crop_numbering"}
    for key in ("face_encoder", "audio_encoder"):
        assert len(settings[key]["weights_sha256"]) == 64 and settings[key]["layer"]
    assert settings["audio_encoder"]["layer"] == "conv8" and settings["audio_encoder"]["output_dim"] == 1000
    assert settings["face_detector"]["weights_sha256"]  # auto may use the detector
    # runtime settings never change the fingerprint; feature settings do
    from dataclasses import replace
    assert fingerprint_settings(replace(cfg, workers=4, batch_size=8, device="cpu"), encoders) == settings
    assert fingerprint_settings(replace(cfg, window_s=5.0), encoders)["window_s"] == 5.0
    assert fingerprint_settings(replace(cfg, audio_track=1), encoders)["audio_track"] == 1
    assert fingerprint_settings(replace(cfg, crop_numbering="0-based"), encoders)["crop_numbering"] == "0-based"
    # each set is fingerprinted with its encoder's record and its kind's part of the same settings
    from emokd.extract.encoders import feature_sets

    face, audio = feature_sets(cfg, encoders)
    assert face.encoder == settings["face_encoder"] and audio.encoder == settings["audio_encoder"]
    assert {**face.settings, **audio.settings} == {k: v for k, v in settings.items() if not k.endswith("_encoder")}
    assert set(face.settings) == {"face_source", "face_detector", "crop_size", "crop_numbering"}


def test_audio_record_tells_the_window_extraction_runs_with(encoders):
    from dataclasses import replace

    from emokd.extract.encoders import fingerprint_settings, load_encoders

    cfg = ExtractConfig().resolved()
    # the default window records 10 s, as before the record followed the config (same fingerprint)
    assert encoders.audio.record()["input_spec"] == {"sample_rate": 22050, "window_s": 10.0, "scale": 256.0}
    longer = replace(cfg, window_s=12.0)
    settings = fingerprint_settings(longer, load_encoders(longer))
    assert settings["audio_encoder"]["input_spec"]["window_s"] == settings["window_s"] == 12.0
    assert load_encoders(cfg).audio.record()["input_spec"]["window_s"] == 10.0  # rebuilt, not the 12 s one


def test_task_records_a_failure_instead_of_raising(tmp_path, encoders):
    """A missing file and a file with no video stream: status failed, the message names the file."""
    import av

    from emokd.cache import FeatureCache
    from emokd.extract.driver import prepare_cache
    from emokd.extract.task import extract_video

    audio_only = tmp_path / "audio_only.mp4"
    with av.open(str(audio_only), "w") as out:
        stream = out.add_stream("aac", rate=22050, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
        frame.sample_rate = 22050
        for packet in list(stream.encode(frame)) + list(stream.encode(None)):
            out.mux(packet)
    items = [VideoItem("missing", tmp_path / "missing.mp4", None, None, "train"),
             VideoItem("audio_only", audio_only, None, None, "train")]
    url = str(tmp_path / "cache.zarr")
    cfg = ExtractConfig().resolved()
    _, plan = prepare_cache(items, url, cfg)
    assert [i.video_id for i in plan.todo] == ["missing", "audio_only"]
    for item in items:
        result = extract_video(item, url, cfg, plan.settings)
        assert result["status"] == "failed" and str(item.video_path) in result["error"]
    cache = FeatureCache.open(url)
    assert cache.video_ids(include_incomplete=True) == []  # nothing half-written is left as complete
    with pytest.raises(Exception, match="duplicate video ids"):
        prepare_cache(items + items[:1], url, cfg)
    # a worker whose encoders differ from the driver's refuses to write
    other = dict(plan.settings, window_s=5.0)
    result = extract_video(items[1], url, cfg, other)
    assert result["status"] == "failed" and "window_s" in result["error"]
    assert Path(url).is_dir()


def test_image_sequence_item(tmp_path, encoders):
    """Frame images (AFEW-VA style) have no audio: audio zeros, audio_ok False, pts = k / fps."""
    from PIL import Image

    from emokd.cache import FeatureCache
    from emokd.extract.driver import prepare_cache
    from emokd.extract.task import extract_video
    from emokd.testing.videos import draw_frame

    paths = []
    for k in range(4):
        paths.append(tmp_path / f"{k:05d}.png")
        Image.fromarray(draw_frame(k, (96, 96), face=True)).save(paths[-1])
    item = VideoItem("afew/clip", None, None, None, "train", dataset="afew_va", frame_images=paths, fps=10.0)
    no_fps = VideoItem("afew/nofps", None, None, None, "train", dataset="afew_va", frame_images=paths)
    still = VideoItem("stills/one", None, None, None, "train", dataset="stills", frame_images=paths[2:3])
    cfg = ExtractConfig(face_source="whole-frame").resolved()
    url = str(tmp_path / "cache.zarr")
    _, plan = prepare_cache([item, no_fps, still], url, cfg)
    assert extract_video(item, url, cfg, plan.settings)["status"] == "done"
    failed = extract_video(no_fps, url, cfg, plan.settings)
    assert failed["status"] == "failed" and "of 4 frames needs fps" in failed["error"]
    assert extract_video(still, url, cfg, plan.settings)["status"] == "done"   # a still needs no fps
    still_arrays = FeatureCache.open(url).read_video("stills/one")
    assert still_arrays["pts"].tolist() == [0.0] and still_arrays["face_ok"].all()
    arrays = FeatureCache.open(url).read_video("afew/clip")
    np.testing.assert_allclose(arrays["pts"], [0.0, 0.1, 0.2, 0.3])
    assert arrays["face_ok"].all() and not arrays["audio_ok"].any() and not arrays["audio"].any()
    assert FeatureCache.open(url).video_attrs("afew/clip")["face_source"] == "whole-frame"


def test_detect_every_is_fingerprinted_only_when_not_1(tmp_path, encoders):
    """Caches made before `detect_every` existed keep their fingerprint; K = 5 is another face set."""
    from dataclasses import replace

    from emokd.cache.sets import make_set
    from emokd.errors import CacheError
    from emokd.extract.driver import prepare_cache
    from emokd.extract.encoders import detector_record, feature_sets

    cfg = ExtractConfig().resolved()
    face, _ = feature_sets(cfg, encoders)
    before = {"face_source": "auto", "face_detector": detector_record(encoders.detector), "crop_size": cfg.crop_size,
              "crop_numbering": "1-based"}                   # the face settings as recorded before it existed
    assert face.fingerprint == make_set(face.encoder, before, face.name).fingerprint
    every5 = replace(cfg, detect_every=5)
    face5, audio5 = feature_sets(every5, encoders)
    assert face5.settings == {**before, "detect_every": 5} and face5.fingerprint != face.fingerprint
    assert audio5.fingerprint == feature_sets(cfg, encoders)[1].fingerprint
    url = str(tmp_path / "cache.zarr")
    prepare_cache([], url, cfg)
    with pytest.raises(CacheError, match="other settings") as refused:
        prepare_cache([], url, every5)
    assert "detect_every" in str(refused.value)
    with pytest.raises(ConfigError, match="detect_every: must be >= 1"):
        replace(cfg, detect_every=0).resolved()
