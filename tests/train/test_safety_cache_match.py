"""A run is used only on the features it was trained on: evaluate, predict and students compare the
cache's fingerprint with the one stored in the run, refuse a mismatch naming each differing setting,
and record `--allow-other-cache`; a teacher on a read-only cache is refused before its first epoch."""

import json

import pytest
import yaml
from click.testing import CliRunner

from emokd.cli import main
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache
from emokd.train.loop import train
from emokd.train.config import TrainConfig
from safety_support import read_only

SMALL = {"lstm_hidden": 8, "extractor": [16], "heads": [8], "discriminator": [8], "dropout": 0.0}


def _config(url, run, **kw):
    return TrainConfig(**{**dict(cache=str(url), run=str(run), epochs=1, batch_size=64, lr=3e-3, window=2, stride=1,
                                 recipe_options=dict(SMALL), device="cpu"), **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A teacher trained on cache A, and cache B: the same shape, made with another setting (seed)."""
    root = tmp_path_factory.mktemp("match")
    a, b = root / "a.zarr", root / "b.zarr"
    write_synthetic_cache(str(a), SyntheticSpec(n_videos=4, frames_per_video=60))
    write_synthetic_cache(str(b), SyntheticSpec(n_videos=4, frames_per_video=60, seed=1))
    train(_config(a, root / "teacher"))
    return root, a, b, root / "teacher"


def _run(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def _one_line_refusal(result, *words):
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in errors[0], errors[0]


def test_evaluate_refuses_a_cache_made_with_other_settings(trained):
    """Problem: a model trained on one cache was scored, exit 0, on a cache made with other settings."""
    root, a, b, teacher = trained
    _one_line_refusal(_run("evaluate", "--run", teacher, "--cache", b, "--device", "cpu"),
                      f"{b}: not the features", "settings.face.seed: the run's cache had 0, this cache has 1",
                      "--allow-other-cache")
    assert not (teacher / "eval_validation.json").exists()
    allowed = _run("evaluate", "--run", teacher, "--cache", b, "--device", "cpu", "--allow-other-cache")
    assert allowed.exit_code == 0, allowed.output
    saved = json.loads((teacher / "eval_validation.json").read_text())
    assert saved["allowed_other_cache"] == [f"settings.{kind}.seed: the run's cache had 0, this cache has 1"
                                            for kind in ("audio", "face")]
    same = _run("evaluate", "--run", teacher, "--cache", a, "--device", "cpu")
    assert same.exit_code == 0, same.output
    saved = json.loads((teacher / "eval_validation.json").read_text())
    assert "allowed_other_cache" not in saved and len(saved["cache_fingerprint"]) == 64


def test_predict_refuses_it_and_records_the_override(trained, tmp_path):
    root, a, b, teacher = trained
    test_list = tmp_path / "test.txt"
    test_list.write_text("image\nsynthetic/video000/00001.jpg\nsynthetic/video000/00002.jpg\n")
    out = tmp_path / "sub.txt"
    args = ["predict", "--run", teacher, "--test-list", test_list, "--out", out, "--device", "cpu"]
    _one_line_refusal(_run(*args, "--cache", b), "settings.face.seed")
    assert not out.exists()
    allowed = _run(*args, "--cache", b, "--allow-other-cache")
    assert allowed.exit_code == 0, allowed.output
    record = json.loads((tmp_path / "sub.txt.json").read_text())
    assert record["allowed_other_cache"] == [f"settings.{kind}.seed: the run's cache had 0, this cache has 1"
                                             for kind in ("audio", "face")]
    assert len(out.read_text().splitlines()) == 3


def test_a_student_refuses_a_cache_its_teacher_was_not_trained_on(trained):
    root, a, b, teacher = trained
    student = root / "student"
    args = ["train-from-cache", "--role", "student", "--teacher", teacher, "--run", student, "--epochs", "1",
            "--device", "cpu", "--window", "2", "--stride", "1"]
    _one_line_refusal(_run(*args, "--cache", b), f"teacher {teacher}", "settings.face.seed")
    assert not student.exists()  # refused before the run folder was made
    allowed = _run(*args, "--cache", b, "--allow-other-cache", "--config", _small_config(root))
    assert allowed.exit_code == 0, allowed.output
    assert yaml.safe_load((student / "config.yaml").read_text())["allow_other_cache"] is True
    assert '"allowed_other_cache"' in allowed.output


def _small_config(root):
    path = root / "small.yaml"
    path.write_text(yaml.safe_dump({"recipe_options": SMALL, "batch_size": 64}))
    return path


def test_a_teacher_on_a_read_only_cache_is_refused_before_training(trained, tmp_path):
    """Problem: a teacher on a read-only cache trained every epoch, then failed writing its soft labels."""
    import shutil

    root, a, b, teacher = trained
    copy = tmp_path / "ro.zarr"
    shutil.copytree(a, copy)
    run = tmp_path / "ro_teacher"
    with read_only(copy):
        _one_line_refusal(_run("train-from-cache", "--cache", copy, "--run", run, "--epochs", "1", "--device", "cpu",
                               "--config", _small_config(root)), f"{copy}: read-only")
    assert not (run / "metrics.csv").exists() and not (run / "last.pt").exists()


def test_a_wrong_feature_set_name_is_refused_before_any_write(trained, tmp_path):
    """The sets are chosen before the run directory and the soft-label name: a wrong name (flag or
    config field) costs nothing, and config.yaml is written once, naming the sets the run read."""
    from emokd.cache import FeatureCache
    from emokd.train.runs import RunDir

    root, a, b, teacher = trained
    cache = FeatureCache.open(a)
    face, audio = cache.sets_of_kind("face")[0].name, cache.sets_of_kind("audio")[0].name
    soft_before = cache.soft_runs()
    run = tmp_path / "wrong_set"
    _one_line_refusal(_run("train-from-cache", "--cache", a, "--run", run, "--face-features", "nope", "--device", "cpu",
                           "--config", _small_config(root)), f"{a}: no feature set 'nope'; it has {face} (face)")
    config = tmp_path / "audio_as_face.yaml"
    config.write_text(yaml.safe_dump({"recipe_options": SMALL, "face_features": audio}))
    _one_line_refusal(_run("train-from-cache", "--cache", a, "--run", run, "--device", "cpu", "--config", config),
                      f"feature set {audio!r} holds audio features, not face")
    assert not run.exists()
    assert FeatureCache.open(a).soft_runs() == soft_before           # no soft-label name claimed
    saved = RunDir(teacher).config()                                 # trained with the default sets
    assert (saved.face_features, saved.audio_features) == (face, audio)
