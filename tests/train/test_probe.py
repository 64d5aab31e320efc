"""`emokd probe`: on a synthetic cache whose labels are known functions of the features, the linear
probes find them (far above chance); their scores equal scikit-learn's on the same predictions."""

import csv

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from emokd.cli import main
from emokd.errors import CacheError
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache
from emokd.train.probe import ProbeConfig, fit_task, load_probe_data, run_probe, task_rows

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("probe") / "synthetic.zarr")
    return write_synthetic_cache(url, SyntheticSpec(n_videos=6, frames_per_video=500, seed=3))


def test_probes_find_the_label_functions(cache):
    rows = {row["features"]: row for row in run_probe(cache, ProbeConfig())}
    assert list(rows) == ["chance", "face", "audio", "face+audio"]
    both, chance = rows["face+audio"], rows["chance"]
    assert both["dim"] == 24 and rows["face"]["dim"] == 16 and rows["audio"]["dim"] == 8
    # labels are tanh / argmax / sign of linear maps of [face, audio]: a linear probe recovers them
    assert both["ccc_v"] > 0.85 and both["ccc_a"] > 0.85
    assert both["f1_expr"] > 0.6 > 2 * chance["f1_expr"]
    assert both["f1_au"] > 0.85 and both["f1_au"] > chance["f1_au"] + 0.2
    assert both["p_mtl"] > chance["p_mtl"] + 1.5
    # each part alone carries part of the signal: both beat each alone, each beats chance
    for part in ("face", "audio"):
        assert chance["p_mtl"] < rows[part]["p_mtl"] < both["p_mtl"]
    assert both["n_val_va"] == rows["face"]["n_val_va"] > 0  # every row scores the same frames


def test_scores_equal_scikit_learn_on_the_probe_predictions(cache):
    cfg = ProbeConfig(max_train=800, seed=1)
    data = load_probe_data(cache, ["face", "audio"])
    rows = task_rows(data, cfg)
    x = np.concatenate([data.features["face"], data.features["audio"]], axis=1)
    report = {row["features"]: row for row in run_probe(cache, cfg)}["face+audio"]
    assert report["n_train_expr"] == 800
    train, val = rows["EXPR"]
    pred = fit_task("EXPR", x[train], data.expr[train], x[val], cfg)
    want = sklearn_metrics.f1_score(data.expr[val], pred, average="macro", labels=list(range(8)), zero_division=0)
    assert report["f1_expr"] == pytest.approx(want, abs=1e-12)
    train, val = rows["AU"]
    pred = fit_task("AU", x[train], data.au[train], x[val], cfg)
    want = np.mean([sklearn_metrics.f1_score(data.au[val][:, k], pred[:, k], zero_division=0) for k in range(12)])
    assert report["f1_au"] == pytest.approx(want, abs=1e-12)
    train, val = rows["VA"]
    pred = fit_task("VA", x[train], data.va[train], x[val], cfg)
    true = data.va[val].astype(np.float64)
    for k, key in enumerate(("ccc_v", "ccc_a")):
        p, t = pred[:, k], true[:, k]
        want = 2 * np.cov(p, t, bias=True)[0, 1] / (p.var() + t.var() + (p.mean() - t.mean()) ** 2)
        assert report[key] == pytest.approx(want, abs=1e-6)  # float32 labels


def test_cli_prints_the_table_and_writes_csv_with_its_settings(cache, tmp_path):
    out = tmp_path / "report.csv"
    result = CliRunner().invoke(main, ["probe", str(cache.url), "--out", str(out), "--max-train", "500"])
    assert result.exit_code == 0, result.output
    assert "face+audio" in result.output and "chance" in result.output
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert [r["features"] for r in rows] == ["chance", "face", "audio", "face+audio"]
    assert float(rows[3]["ccc_v"]) > 0.8 and rows[3]["n_train_va"] == "500"
    assert yaml.safe_load(out.with_suffix(".yaml").read_text())["max_train"] == 500
    bad = CliRunner().invoke(main, ["probe", str(cache.url), "--out", str(out), "--face-features", "hsemotion"])
    assert bad.exit_code == 2 and "no face features named 'hsemotion'; it has ['face']" in bad.output


def test_a_cache_without_validation_labels_is_refused(tmp_path):
    spec = SyntheticSpec(n_videos=2, frames_per_video=50, missing={"VA": 1.0, "EXPR": 1.0, "AU": 1.0})
    small = write_synthetic_cache(str(tmp_path / "c.zarr"), spec)
    with pytest.raises(Exception, match="no labelled validation frame"):
        run_probe(small)
    with pytest.raises(CacheError, match="no audio features named 'x'"):
        run_probe(small, ProbeConfig(audio_features="x"))
