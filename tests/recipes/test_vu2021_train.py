"""Recipe vu2021 end to end through the shared loop and the CLI, on a small multi-database cache."""

import csv
import json
import math

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from emokd.cache.store import FeatureCache
from emokd.cli import main
from emokd.inspect.plot import InspectData, render_inspect
from emokd.inspect.predictions import run_predictions
from emokd.train.loop import train
from emokd.train.config import TrainConfig
from emokd.train.recipes.vu2021.recipe import Vu2021
from emokd.train.soft_labels import soft_run_name
from emokd.testing.multidb_cache import LatentWorld, MultiDbSpec, write_multidb_cache

SPEC = MultiDbSpec(expr_stills=30, both_stills=16, va_clips=3, clip_frames=20, val_videos=2, val_frames=60)
OPTIONS = {"hidden": [32], "gru_hidden": 8, "dropout": 0.0, "expr_datasets": ["expr_db"],
           "va_datasets": ["va_db"], "expr_va_datasets": ["both_db"], "eval_datasets": ["target"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vu2021")
    url = str(root / "cache.zarr")
    write_multidb_cache(url, SPEC)
    (root / "teacher.yaml").write_text(yaml.safe_dump({
        "epochs": 3, "batch_size": 8, "lr": 3e-3, "window": 3, "stride": 2, "device": "cpu",
        "recipe_options": {**OPTIONS, "temporal": False}}))
    result = CliRunner().invoke(main, ["train-from-cache", "--recipe", "vu2021", "--config", str(root / "teacher.yaml"),
                                       "--cache", url, "--run", str(root / "teacher")])
    assert result.exit_code == 0, result.output
    student = train(TrainConfig(cache=url, run=str(root / "student"), role="student", teacher=str(root / "teacher"),
                                recipe="vu2021", recipe_options={**OPTIONS, "balanced": True}, epochs=2,
                                batch_size=8, lr=3e-3, window=3, stride=2, device="cpu"))
    return {"root": root, "url": url, "student": student}


def test_teacher_run_and_soft_labels(runs):
    root = runs["root"]
    ckpt = torch.load(root / "teacher" / "best.pt", weights_only=False)
    assert ckpt["recipe"] == "vu2021" and ckpt["recipe_options"]["temporal"] is False
    assert ckpt["recipe_options"]["expr_va_datasets"] == ["both_db"]
    cache = FeatureCache.open(runs["url"])
    name = soft_run_name(root / "teacher")
    soft = cache.read_soft(name, "expr_db/00000")
    assert soft["expr"].shape == (1, 7) and soft["va_logits"].shape == (1, 40) and soft["va"].shape == (1, 2)
    # the stored expectation is the softmax expectation of the stored bin logits, over the bin centres
    logits = torch.tensor(soft["va_logits"]).view(1, 2, 20)
    centres = torch.linspace(-0.95, 0.95, 20)
    assert np.allclose(soft["va"], (torch.softmax(logits, -1) @ centres).numpy(), atol=1e-5)
    clip = cache.read_soft(name, "va_db/000")
    assert clip["expr"].shape == (20, 7)                       # every frame, labelled for EXPR or not
    assert cache.read_labels("both_db/00000")["dataset"] == "both_db"


def test_student_trains_on_all_sets(runs):
    rows = list(csv.DictReader(open(runs["root"] / "student" / "metrics.csv")))
    assert len(rows) == 2
    for key in ("expr_EXPR", "va_EXPR", "expr_VA", "va_VA", "expr_EXPR_VA", "va_EXPR_VA"):
        assert math.isfinite(float(rows[0][key])) and float(rows[0][key]) > 0, key
    # the EXPR set has no VA label: its VA loss is pure distillation, the teacher's knowledge
    for key in ("ccc_v", "ccc_a", "f1_expr", "acc_expr", "score"):
        assert math.isfinite(float(rows[-1][key])), key
    assert runs["student"]["soft_run"] == soft_run_name(runs["root"] / "teacher")


def test_synthetic_multidb_cache_matches_its_ground_truth(runs):
    cache = FeatureCache.open(runs["url"])
    datasets = {v.split("/")[0] for v in cache.video_ids()}
    assert datasets == {"expr_db", "both_db", "va_db", "target"}
    expr_only = cache.read_labels("expr_db/00003")
    assert np.isnan(expr_only["va"]).all() and 0 <= expr_only["expr"][0] < 7
    va_only = cache.read_labels("va_db/001")
    assert (va_only["expr"] == -1).all() and not np.isnan(va_only["va"]).any()
    both = cache.read_labels("both_db/00002")
    assert not np.isnan(both["va"]).any() and both["expr"][0] >= 0
    target = cache.read_labels("target/001")
    assert target["split"] == "validation" and cache.n_frames("target/001") == 60
    assert cache.read_video("target/001")["audio_ok"].sum() == 0   # image items carry no audio
    world = LatentWorld(SPEC)
    z = np.zeros((1, SPEC.latent_dim))
    va, expr = world.labels(z)
    assert va.tolist() == [[0.0, 0.0]] and 0 <= int(expr[0]) < 7


def test_synthetic_multidb_cache_is_packed_as_extraction_packs(tmp_path):
    """Shards per dataset under extraction's keys; a video over PACK_FRAMES has a shard of its own."""
    from emokd.cache import encode_key
    from emokd.cache.packing import PACK_FRAMES, packed_key

    spec = MultiDbSpec(expr_stills=5, both_stills=2, va_clips=2, clip_frames=20, val_videos=2,
                       val_frames=PACK_FRAMES + 1)
    cache = write_multidb_cache(str(tmp_path / "packed.zarr"), spec)
    stills = {name: [f"{name}/{i:05d}" for i in range(n)] for name, n in (("expr_db", 5), ("both_db", 2))}
    expected = {packed_key(name, ids): ids for name, ids in stills.items()}
    expected[packed_key("va_db", ["va_db/000", "va_db/001"])] = ["va_db/000", "va_db/001"]
    expected.update({encode_key(v): [v] for v in ("target/000", "target/001")})
    assert {key: cache.index.items_of(key) for key in cache.shard_keys()} == expected


def test_run_holds_only_the_metrics_the_recipe_declares(runs):
    run = runs["root"] / "teacher"
    header = open(run / "metrics.csv").readline().strip().split(",")
    for key in Vu2021.metric_keys:
        assert key in header, key
    assert "f1_au" not in header and "p_mtl" not in header          # no AU head: nothing to fill in
    assert (run / "curves.png").is_file()
    ckpt = torch.load(run / "best.pt", weights_only=False)
    assert ckpt["net_config"]["face_dim"] == SPEC.face_dim
    assert (ckpt["net_config"]["window"], ckpt["net_config"]["stride"]) == (3, 2)


def test_evaluate_prints_the_recipes_metrics(runs):
    run = runs["root"] / "teacher"
    result = CliRunner().invoke(main, ["evaluate", "--run", str(run), "--cache", runs["url"], "--device", "cpu"])
    assert result.exit_code == 0, result.output
    printed = [line.split()[0] for line in result.output.splitlines()[:-1]]
    assert printed == ["VA", "EXPR", *Vu2021.metric_keys]              # per task, then the metrics
    saved = json.loads((run / "eval_validation.json").read_text())
    assert saved["tasks"]["VA"] == {"n_videos": 2, "n_frames": 120, **{k: saved[k] for k in ("ccc_v", "ccc_a", "ccc_va")}}
    assert "AU" not in saved["tasks"] and saved["mtl_on"] is None
    best = next(r for r in csv.DictReader(open(run / "metrics.csv")) if int(r["epoch"]) == saved["epoch"])
    for key in Vu2021.metric_keys:
        assert saved[key] == pytest.approx(float(best[key]), abs=1e-5), key
    assert "f1_au" not in saved and "p_mtl" not in saved


def test_predict_refuses_an_mtl_submission_without_aus(runs, tmp_path):
    test_list = tmp_path / "test.txt"
    test_list.write_text("image\ntarget/001/00001.jpg\n")
    out = tmp_path / "sub.txt"
    result = CliRunner().invoke(main, ["predict", "--run", str(runs["root"] / "teacher"), "--cache", runs["url"],
                                       "--test-list", str(test_list), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: recipe vu2021 predicts VA, EXPR only: an ABAW MTL submission needs VA, EXPR, AU (AU missing)"]
    assert not out.exists()


def test_inspect_draws_the_tasks_the_run_predicts(runs, tmp_path):
    cache = FeatureCache.open(runs["url"])
    predictions = run_predictions(runs["root"] / "teacher", cache, "target/001")
    assert sorted(predictions) == ["expr", "va"]
    assert predictions["va"].shape == (60, 2) and predictions["expr"].shape == (60,)
    assert ((predictions["expr"] >= 0) & (predictions["expr"] < 7)).all()
    n = 60
    data = InspectData("target/001", np.arange(n) / 30, np.arange(1, n + 1) / 30, np.array([0, n - 1]),
                       np.zeros((2, 8, 8, 3), np.uint8), np.array([True, True]), predictions=predictions)
    assert render_inspect(data, tmp_path / "p.png").is_file()
