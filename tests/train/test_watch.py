"""A run you can watch and reuse: fresh student seed, the epoch line and progress lines when piped,
curves.png with the best epoch, soft-label names unique and claimed before training, export-soft."""

import csv
import io
import json

import pytest
import torch
from click.testing import CliRunner

from emokd.cache import FeatureCache
from emokd.cli import main
from emokd.errors import CacheError
from emokd.train.config import TrainConfig
from emokd.train.loop import train
from emokd.train.plots import best_epoch
from emokd.train.progress import Progress, epoch_line
from emokd.train.recipes.base import build_recipe
from emokd.train.recipes.jeong2022.recipe import Jeong2022
from emokd.train.soft_labels import default_soft_name, soft_run_name
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache

pytestmark = pytest.mark.slow      # trains a few small runs
SMALL = {"lstm_hidden": 8, "extractor": [16], "heads": [8], "discriminator": [8]}


def settings(url, run, **kw):
    return TrainConfig(**{**dict(cache=url, run=str(run), epochs=2, batch_size=64, lr=3e-3, window=2, stride=1,
                                 recipe_options=dict(SMALL), device="cpu"), **kw})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("watch")
    url = str(root / "cache.zarr")
    write_synthetic_cache(url, SyntheticSpec(n_videos=4, frames_per_video=120))
    built = []                                 # the initial weights of each network the loop builds
    real_build = Jeong2022.build_model

    def build_and_keep(self, dims):
        model = real_build(self, dims)
        built.append({k: v.clone() for k, v in model.state_dict().items()})
        return model

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Jeong2022, "build_model", build_and_keep)
        teacher = train(settings(url, root / "teacher"))
        student = train(settings(url, root / "student", role="student", teacher=str(root / "teacher"), epochs=1))
    return {"root": root, "url": url, "teacher": teacher, "student": student, "initial": built}


def test_student_starts_from_other_weights_than_its_teacher(runs):
    """Default seeds: teacher 0, student teacher + 1, so the initial weights (and batch order,
    dropout masks) differ; with the teacher's seed they would be the same."""
    root = runs["root"]
    assert runs["teacher"]["seed"] == 0 and runs["student"]["seed"] == 1
    teacher, student = runs["initial"]
    weights = [k for k, v in teacher.items() if v.dim() == 2]          # Linear and LSTM matrices
    assert weights and all(not torch.equal(teacher[k], student[k]) for k in weights)
    torch.manual_seed(0)                                      # the teacher's seed gives its weights again
    again = build_recipe("jeong2022", SMALL).build_model({"face": 16, "audio": 8, "window": 2, "stride": 1})
    assert all(torch.equal(teacher[k], v) for k, v in again.state_dict().items())
    assert torch.load(root / "student" / "last.pt", weights_only=False)["config"]["seed"] == 1


def test_epoch_line_and_progress_lines_read_well_in_a_file():
    out = io.StringIO()
    progress = Progress(stream=out, every_s=0.0)
    assert not progress.terminal
    assert list(progress.steps(list(range(4)), "epoch 1/3")) == [0, 1, 2, 3]
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("epoch 1/3: step 1/4 (25%), 0s, ETA ") and lines[-1].startswith("epoch 1/3: step 4/4")
    assert "\r" not in out.getvalue()
    row = {"epoch": 2, "sup_VA": 0.41234, "loss_task": 1.1, "loss_VA": 77.0, "dist_VA": 0.2, "ccc_v": 0.3,
           "p_mtl": 1.2}
    line = epoch_line(2, 20, row, ("sup_", "dist_", "loss_task"), ("ccc_v", "p_mtl"), "p_mtl", 1.25, 1, 12.34)
    assert line == ("epoch 3/20  train sup_VA 0.4123 dist_VA 0.2 loss_task 1.1 | val ccc_v 0.3 p_mtl 1.2 "
                    "(p_mtl best 1.25 @ 2) | 12.3s")


def test_each_epoch_prints_one_line(runs, tmp_path, capsys):
    train(settings(runs["url"], tmp_path / "t", export_soft=False, epochs=3))
    printed = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in printed] == ["1/3", "2/3", "3/3"]
    assert all(" | val " in line and "p_mtl best" in line and line.endswith("s") for line in printed)


def test_curves_png_and_best_epoch(runs):
    run = runs["root"] / "teacher"
    assert (run / "curves.png").stat().st_size > 10_000
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert best_epoch(rows, "p_mtl") == torch.load(run / "best.pt", weights_only=False)["epoch"]


def test_soft_label_names_are_unique_by_default(runs, tmp_path):
    a, b = tmp_path / "one" / "teacher", tmp_path / "two" / "teacher"
    assert default_soft_name(a) != default_soft_name(b)
    assert default_soft_name(a).startswith("teacher-") and len(default_soft_name(a)) == len("teacher-") + 8
    assert runs["teacher"]["soft_run"] == soft_run_name(runs["root"] / "teacher")


def test_a_taken_soft_label_name_is_refused_before_training(runs, tmp_path):
    taken = runs["teacher"]["soft_run"]
    with pytest.raises(CacheError, match=f"soft labels {taken!r} belong to teacher run"):
        train(settings(runs["url"], tmp_path / "other", soft_run=taken))
    assert not (tmp_path / "other").exists()                  # nothing trained, nothing written


def test_export_soft_rewrites_a_trained_teacher_under_a_new_name(runs):
    run = runs["root"] / "teacher"
    result = CliRunner().invoke(main, ["export-soft", "--run", str(run), "--cache", runs["url"],
                                       "--name", "again", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "soft labels 'again': 4 video(s) written" in result.output
    cache = FeatureCache.open(runs["url"])
    vid = cache.video_ids()[0]
    first = cache.read_soft(runs["teacher"]["soft_run"], vid)
    again = cache.read_soft("again", vid)
    assert all((first[k] == again[k]).all() for k in first)             # the same checkpoint's outputs
    assert json.loads(json.dumps(cache.soft_run_attrs("again")))["teacher_run"] == str(run.resolve())
