"""predict-video's parts: the centred filter against a hand computation, the inputs, the run's
extraction settings for new videos, the encoder check, the CSV and ABAW writers."""

import numpy as np
import pytest

from emokd.apply.extraction import RunExtraction, check_same_encoders, extract_config_for
from emokd.apply.inputs import find_videos
from emokd.apply.predict_video import VideoPrediction, csv_columns, write_abaw, write_frame_csv
from emokd.apply.smooth import smooth_in_time
from emokd.config import to_dict
from emokd.constants import AU_NAMES, EXPR_CLASSES
from emokd.errors import DataError
from emokd.extract.config import ExtractConfig


def test_smoothing_is_a_centred_mean_in_time():
    t = np.array([0.0, 0.1, 0.2, 0.3, 0.5])
    x = np.array([[1.0], [2.0], [3.0], [4.0], [10.0]])
    got = smooth_in_time(x, t, 0.2)                     # +- 0.1 s around each frame
    np.testing.assert_allclose(got[:, 0], [1.5, 2.0, 3.0, 3.5, 10.0])
    got = smooth_in_time(x, t, 0.4)                     # +- 0.2 s
    np.testing.assert_allclose(got[:, 0], [2.0, 2.5, 2.5, 19 / 4, 7.0])
    np.testing.assert_array_equal(smooth_in_time(x, t, 0.0), x)
    p = np.random.default_rng(0).dirichlet(np.ones(8), 50)
    assert np.allclose(smooth_in_time(p, np.arange(50) / 30, 0.5).sum(1), 1.0)
    with pytest.raises(ValueError, match="non-decreasing"):
        smooth_in_time(x, t[::-1], 0.2)


def test_inputs_a_file_or_a_folder(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.MOV").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    items = find_videos(tmp_path)
    assert [(i.video_id, i.video_path) for i in items] == [("a", tmp_path / "a.mp4"), ("sub/b", tmp_path / "sub" / "b.MOV")]
    assert [i.video_id for i in find_videos(tmp_path / "sub" / "b.MOV")] == ["b"]
    with pytest.raises(DataError, match="not a video file"):
        find_videos(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no video file in this folder"):
        find_videos(tmp_path / "empty")


def test_the_runs_settings_with_runtime_overrides_and_crops_become_the_detector():
    stored = to_dict(ExtractConfig(face_source="crops", crop_size=96, window_s=5.0, workers=8, device="cuda"))
    cfg = extract_config_for(RunExtraction(stored, []), {"device": "cpu", "workers": 1, "face_source": None})
    assert (cfg.face_source, cfg.crop_size, cfg.window_s, cfg.workers, cfg.device) == ("detector", 96, 5.0, 1, "cpu")
    cfg = extract_config_for(RunExtraction(stored, []), {"face_source": "whole-frame"})
    assert cfg.face_source == "whole-frame" and cfg.workers == 1      # runtime fields: never the run's
    stored = {**to_dict(ExtractConfig(face_source="auto")), "a_field_of_a_newer_emokd": 1}
    assert extract_config_for(RunExtraction(stored, []), {}).face_source == "auto"


def test_other_encoders_than_the_runs_are_refused():
    record = {"name": "fer_pyemotion", "kind": "face", "output_dim": 256, "layer": "fc", "weights_sha256": "a",
              "input_spec": {"size": 48}}
    check_same_encoders("r", [dict(record, array="face")], [record])
    with pytest.raises(DataError, match="differ from those run r was trained on"):
        check_same_encoders("r", [record], [dict(record, weights_sha256="b")])


def prediction(n=3, tasks=("va", "expr", "au")):
    rng = np.random.default_rng(1)
    probs = {"va": rng.uniform(-1, 1, (n, 2)), "expr": rng.dirichlet(np.ones(8), n), "au": rng.random((n, 12))}
    return VideoPrediction("sub/clip", np.array([0.0, 0.04, 0.08])[:n], np.array([True, False, True])[:n],
                           {k: probs[k].astype(np.float32) for k in tasks})


def test_csv_has_one_row_per_frame_in_named_columns(tmp_path):
    pred = prediction()
    path = write_frame_csv(pred, tmp_path / "sub" / "clip.csv")
    lines = path.read_text().splitlines()
    assert lines[0].split(",") == ["frame", "time", "face_ok", "valence", "arousal", *EXPR_CLASSES, *AU_NAMES]
    row = lines[2].split(",")
    assert row[:3] == ["1", "0.040000", "0"]
    np.testing.assert_allclose([float(x) for x in row[3:5]], pred.probabilities["va"][1], atol=1e-6)
    np.testing.assert_allclose([float(x) for x in row[5:13]], pred.probabilities["expr"][1], atol=1e-6)
    assert len(lines) == 4 and not (tmp_path / "sub" / "clip.csv.tmp").exists()
    assert csv_columns(prediction(tasks=("va", "expr"))) == ["frame", "time", "face_ok", "valence", "arousal",
                                                             *EXPR_CLASSES]


def test_abaw_rows_decide_from_the_probabilities(tmp_path):
    pred = prediction()
    lines = write_abaw([pred], tmp_path / "abaw.txt").read_text().splitlines()
    assert lines[0] == "image,valence,arousal,expression,aus" and len(lines) == 4
    row = lines[3].split(",")
    assert row[0] == "sub/clip/00003.jpg"
    assert int(row[3]) == int(pred.probabilities["expr"][2].argmax())
    assert [int(x) for x in row[4:]] == [int(p > 0.5) for p in pred.probabilities["au"][2]]
