"""End to end on a synthetic cache: a teacher learns every task, two students reuse its soft labels
without recomputing them, evaluate/predict agree with the run, device selection."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from emokd.cli import main
from emokd.errors import ConfigError
from emokd.train import soft_labels
from emokd.train.data import load_frame_data
from emokd.train.evaluate import evaluate
from emokd.train.loop import train
from emokd.train.metrics import chance_metrics
from emokd.train.predict import HEADER
from emokd.train.recipes.jeong2022.recipe import Jeong2022
from emokd.train.runs import load_trained
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache
from emokd.models.device import resolve_device
from emokd.train.config import TrainConfig

SMALL = {"lstm_hidden": 32, "extractor": [64, 32], "heads": [32], "discriminator": [16], "dropout": 0.0}


def config(cache, out, **kw):
    base = dict(cache=cache, run=str(out), epochs=8, batch_size=64, lr=3e-3, window=3, stride=2,
                recipe_options=dict(SMALL), device="cpu", eval_batch_size=1024)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    url = str(root / "cache.zarr")
    cache = write_synthetic_cache(url, SyntheticSpec(n_videos=8, frames_per_video=500,
                                                     missing={"VA": 0.3, "EXPR": 0.3, "AU": 0.3}))
    summary = train(config(url, root / "teacher"))
    return {"url": url, "cache": cache, "run": root / "teacher", "summary": summary, "root": root}


def best_row(run: Path) -> dict:
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    return max(rows, key=lambda r: float(r["p_mtl"]))


def test_teacher_beats_chance_on_every_task(teacher):
    data = load_frame_data(teacher["cache"], ["validation"])
    chance = chance_metrics(data.va, data.expr, data.au)
    best = {k: float(v) for k, v in best_row(teacher["run"]).items() if v}
    assert best["ccc_v"] > 0.6 and best["ccc_a"] > 0.6                       # chance: 0
    assert best["f1_expr"] > chance["f1_expr"] + 0.4                         # chance ~0.04
    assert best["f1_au"] > chance["f1_au"] + 0.07                            # always-active ~0.67
    assert best["p_mtl"] > chance["p_mtl"] + 1.5
    assert teacher["summary"]["best_score"] == pytest.approx(best["p_mtl"], abs=1e-5)


def test_run_directory_contents(teacher):
    run = teacher["run"]
    for name in ("config.yaml", "metrics.csv", "best.pt", "last.pt", "curves.png", "train.log"):
        assert (run / name).is_file(), name
    header = open(run / "metrics.csv").readline().strip().split(",")
    for col in ("loss_VA", "loss_EXPR", "loss_AU", "loss_MTL", "ccc_v", "ccc_a", "f1_expr", "f1_au",
                "p_mtl", "disc_acc", "gamma_VA", "gamma_EXPR", "gamma_AU", "delta", "sup_VA", "sup_MTL", "steps"):
        assert col in header, col
    ckpt = torch.load(run / "best.pt", weights_only=False)
    assert ckpt["net_config"] == {"face_dim": 16, "audio_dim": 8, "window": 3, "stride": 2, "lstm_hidden": 32,
                                  "extractor": [64, 32], "heads": [32], "discriminator": [16], "dropout": 0.0,
                                  "head_dropout": 0.0, "grl_coefficient": 1.0, "n_expr": 8, "n_au": 12, "n_tasks": 3}
    assert "dims" not in ckpt and "stride" not in ckpt          # the net config is the one record of them
    assert ckpt["config"]["role"] == "teacher" and ckpt["recipe"] == "jeong2022"
    assert teacher["summary"]["soft_videos_written"] == 8


def soft_files(url: str, name: str) -> dict:
    """The files of a teacher run's soft labels: its run group and every shard's group."""
    files = list((Path(url) / "soft" / name).rglob("*")) + list((Path(url) / "shards").glob(f"*/soft/{name}/**/*"))
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in files if p.is_file()}


def test_two_students_reuse_one_teachers_soft_labels(teacher, monkeypatch):
    soft_name = teacher["summary"]["soft_run"]
    assert soft_name == soft_labels.default_soft_name(teacher["run"]) and soft_name.startswith("teacher-")
    before = soft_files(teacher["url"], soft_name)
    assert len(before) > 8

    def no_recompute(*args, **kwargs):
        raise AssertionError("soft labels were recomputed")
    monkeypatch.setattr(soft_labels, "export_soft_labels", no_recompute)
    chance = None
    for name, options in (("student_a", {"alpha": 10.0}), ("student_b", {"alpha": 3.0, "beta": 0.5})):
        cfg = config(teacher["url"], teacher["root"] / name, role="student", teacher=str(teacher["run"]),
                     epochs=2, recipe_options={**SMALL, **options})
        summary = train(cfg)
        assert summary["soft_run"] == soft_name
        if chance is None:
            data = load_frame_data(teacher["cache"], ["validation"])
            chance = chance_metrics(data.va, data.expr, data.au)
        assert summary["best_score"] > chance["p_mtl"] + 1.0
        header = open(teacher["root"] / name / "metrics.csv").readline()
        assert "dist_VA" in header and "dist_MTL" not in header        # MTL batches: L_MTL^S alone
    assert soft_files(teacher["url"], soft_name) == before           # not one soft-label file rewritten


def test_evaluate_cli_reproduces_the_best_epoch(teacher):
    result = CliRunner().invoke(main, ["evaluate", "--run", str(teacher["run"]), "--cache", teacher["url"],
                                       "--split", "validation", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    saved = json.loads((teacher["run"] / "eval_validation.json").read_text())
    best = best_row(teacher["run"])
    assert saved["recipe"] == "jeong2022"
    for key in ("ccc_v", "ccc_a", "ccc_va", "f1_expr", "f1_au", "p_mtl"):
        assert saved[key] == pytest.approx(float(best[key]), abs=1e-5)
        assert f"{key:8s} {saved[key]:.4f}" in result.output
    data = load_frame_data(teacher["cache"], ["validation"])
    for task, key in (("VA", "VA"), ("EXPR", "EXPR"), ("AU", "AU")):
        assert saved["tasks"][task]["n_frames"] == int(data.task_mask(key).sum())    # every labelled frame
        assert saved["tasks"][task]["n_videos"] == 2
    assert saved["mtl_on"].startswith("the per-task validation sets")              # no MTL set here
    assert f"P_MTL on {saved['mtl_on']}" in result.output
    # per task, then the metrics, then where P_MTL came from, then "saved"
    assert len(result.output.splitlines()) == 3 + len(Jeong2022.metric_keys) + 2


def test_a_checkpoint_without_its_network_config_is_a_one_line_error(teacher, tmp_path):
    old = tmp_path / "old_run"
    old.mkdir()
    for name in ("config.yaml", "metrics.csv"):
        (old / name).write_bytes((teacher["run"] / name).read_bytes())
    ckpt = torch.load(teacher["run"] / "best.pt", weights_only=False)
    del ckpt["net_config"]
    ckpt["dims"] = {"face": 16, "audio": 8, "window": 3}           # what a checkpoint held before
    torch.save(ckpt, old / "best.pt")
    result = CliRunner().invoke(main, ["evaluate", "--run", str(old), "--cache", teacher["url"], "--device", "cpu"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {old / 'best.pt'}: checkpoint holds no network config (written by an older emokd); "
        "train the run again"]


def test_load_trained_rebuilds_the_network_from_the_checkpoint_alone(teacher, tmp_path):
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "best.pt").write_bytes((teacher["run"] / "best.pt").read_bytes())   # no config.yaml, no cache
    recipe, model, _ = load_trained(moved)
    assert recipe.name == "jeong2022" and not model.training
    assert (model.config.window, model.config.stride, model.config.lstm_hidden) == (3, 2, 32)
    data = load_frame_data(teacher["cache"], ["validation"], model.config.window, model.config.stride)
    best = best_row(teacher["run"])
    metrics = evaluate(model, recipe, data, "validation").metrics
    assert list(metrics) == ["ccc_v", "ccc_a", "f1_expr", "f1_au", "p_mtl", "ccc_va"]   # metrics.csv order
    assert metrics["p_mtl"] == pytest.approx(float(best["p_mtl"]), abs=1e-5)


def test_predict_writes_a_submission_with_earlier_fill(teacher, tmp_path):
    cache = teacher["cache"]
    vid = cache.video_ids()[-1]
    ok = cache.read_video(vid, ["face_ok"])["face_ok"]
    k = int(np.flatnonzero(~ok[1:])[0]) + 1            # a frame without a face, after frame 0
    frames = [1, k, k + 1, 500, 520]                   # 0-based; 520 is past the end (500 frames)
    test_list = tmp_path / "test.txt"
    test_list.write_text("image\n" + "".join(f"{vid}/{f + 1:05d}.jpg\n" for f in frames))
    out = tmp_path / "sub.txt"
    result = CliRunner().invoke(main, ["predict", "--run", str(teacher["run"]), "--cache", teacher["url"],
                                       "--test-list", str(test_list), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == HEADER and len(lines) == 1 + len(frames)
    rows = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in rows] == [f"{vid}/{f + 1:05d}.jpg" for f in frames]
    for r in rows:
        assert len(r) == 1 + 2 + 1 + 12
        assert -1 <= float(r[1]) <= 1 and 0 <= int(r[3]) < 8 and set(r[4:]) <= {"0", "1"}
    earlier = max(j for j in range(k) if ok[j])
    if earlier == 1:
        assert rows[1][1:] == rows[0][1:]             # the no-face frame repeats frame `earlier`
    assert rows[3][1:] == rows[4][1:]                  # past the end: the last frame's prediction


def test_device_auto_and_unavailable_cuda():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_cli_errors_are_one_line_and_name_the_setting(teacher, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["train-from-cache", "--cache", teacher["url"], "--role", "student",
                                  "--run", str(tmp_path / "s")])
    assert result.exit_code == 2 and "needs --teacher" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipe_options: {alphaa: 1.0}\n")
    result = runner.invoke(main, ["train-from-cache", "--cache", teacher["url"], "--run", str(tmp_path / "t"),
                                  "--config", str(bad), "--device", "cpu"])
    assert result.exit_code == 2 and "alphaa" in result.output
    assert not (tmp_path / "t").exists()
    result = runner.invoke(main, ["train-from-cache", "--cache", teacher["url"], "--run", str(teacher["run"])])
    assert result.exit_code == 2 and "already holds a run" in result.output
