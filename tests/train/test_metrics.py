"""ABAW metrics against hand-computed values and scikit-learn, including the cases the reference
code got wrong (an AU absent from the evaluated subset, a subset holding one expression class)."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from emokd.train import metrics as M


def test_ccc_hand_computed():
    pred = np.array([1.0, 2.0, 3.0])
    true = np.array([1.0, 2.0, 4.0])
    # means 2, 7/3; population var 2/3 and 14/9; cov = (1*(4/3) + 0 + 1*(5/3)) / 3 = 1
    expected = 2 * 1.0 / (2 / 3 + 14 / 9 + (1 / 3) ** 2)
    assert M.ccc(pred, true) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.8571428571, abs=1e-9)


def test_ccc_uses_population_variance_and_penalises_bias():
    x = np.array([0.1, -0.3, 0.5, -0.3])  # mean 0: -x has the same mean
    assert M.ccc(x, x) == pytest.approx(1.0)
    assert M.ccc(x + 1.0, x) < 0.2           # perfectly correlated, but shifted
    assert M.ccc(-x, x) == pytest.approx(-1.0)
    assert M.ccc(np.zeros(3), np.zeros(3)) == 0.0


def test_expr_macro_f1_matches_sklearn_over_8_classes():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 8, 500)
    pred = np.where(rng.random(500) < 0.6, true, rng.integers(0, 8, 500))
    ref = f1_score(true, pred, labels=range(8), average="macro", zero_division=0)
    assert M.expr_f1(pred, true) == pytest.approx(ref, abs=1e-12)


def test_expr_one_class_subset():
    # the subset holds only class 4; the other 7 classes score 0 (sklearn's zero_division=0)
    true = np.full(10, 4)
    pred = np.array([4] * 8 + [0, 2])
    f1_4 = 2 * 8 / (2 * 8 + 0 + 2)
    assert M.expr_f1(pred, true) == pytest.approx(f1_4 / 8)
    assert M.expr_f1(pred, true) == pytest.approx(
        f1_score(true, pred, labels=range(8), average="macro", zero_division=0))


def test_au_absent_from_subset_matches_sklearn():
    rng = np.random.default_rng(1)
    true = rng.integers(0, 2, (200, 12))
    pred = rng.integers(0, 2, (200, 12))
    true[:, 3] = 0                 # AU6 never active in this subset
    pred[:, 3] = 0                 # ... and never predicted: F1 0 by convention
    true[:, 5] = 0                 # AU10 absent but predicted sometimes: F1 0
    per_unit = [f1_score(true[:, k], pred[:, k], zero_division=0) for k in range(12)]
    assert M.au_f1_per_unit(pred, true) == pytest.approx(per_unit, abs=1e-12)
    assert M.au_f1(pred, true) == pytest.approx(np.mean(per_unit), abs=1e-12)
    assert M.au_f1_per_unit(pred, true)[3] == 0.0


def test_au_f1_hand_computed():
    true = np.zeros((4, 12), int)
    pred = np.zeros((4, 12), int)
    true[:, 0] = [1, 1, 0, 0]
    pred[:, 0] = [1, 0, 1, 0]      # tp 1, fp 1, fn 1 -> 2/4
    true[:, 1] = pred[:, 1] = [1, 0, 0, 0]  # perfect -> 1
    assert M.au_f1(pred, true) == pytest.approx((0.5 + 1.0) / 12)


def test_abaw_metrics_drop_missing_labels_and_sum_p_mtl():
    va_true = np.array([[0.1, 0.2], [np.nan, np.nan], [0.3, -0.1], [-0.2, 0.4]], np.float32)
    va_pred = np.array([[0.1, 0.2], [9.0, 9.0], [0.3, -0.1], [-0.2, 0.4]], np.float32)
    expr_true = np.array([1, -1, 2, 1], np.int8)
    expr_pred = np.array([1, 5, 2, 1])
    au_true = np.zeros((4, 12), np.int8)
    au_true[1] = -1
    au_true[:, 0] = [1, -1, 0, 1]
    au_pred = np.zeros((4, 12), int)
    au_pred[:, 0] = [1, 1, 0, 1]
    m = M.abaw_metrics(va_pred, expr_pred, au_pred, va_true, expr_true, au_true)
    assert m["ccc_v"] == pytest.approx(1.0) and m["ccc_a"] == pytest.approx(1.0)
    assert m["f1_expr"] == pytest.approx(2 / 8)            # classes 1 and 2 perfect, 6 absent
    assert m["f1_au"] == pytest.approx(1 / 12)
    assert m["p_mtl"] == pytest.approx(1.0 + 2 / 8 + 1 / 12)


def test_p_mtl_leaves_out_a_task_without_labels():
    va = np.array([[0.1, 0.2], [0.3, -0.1], [-0.2, 0.4]], np.float32)
    no_expr = np.full(3, -1, np.int8)
    no_au = np.full((3, 12), -1, np.int8)
    m = M.abaw_metrics(va, np.zeros(3, int), np.zeros((3, 12), int), va, no_expr, no_au)
    assert np.isnan(m["f1_expr"]) and np.isnan(m["f1_au"])
    assert m["p_mtl"] == pytest.approx(1.0)                 # VA only: a score to select best.pt on
    assert np.isnan(M.p_mtl(float("nan"), float("nan"), float("nan"), float("nan")))


def test_chance_metrics_are_what_constant_predictors_score():
    true = np.array([0, 0, 0, 1, 2, 3])
    au = np.array([[1] * 12, [0] * 12, [1] * 12, [0] * 12, [0] * 12, [0] * 12])
    c = M.chance_metrics(np.zeros((6, 2)), true, au)
    assert c["f1_expr"] == pytest.approx(f1_score(true, np.zeros(6), labels=range(8), average="macro",
                                                  zero_division=0))
    assert c["f1_au"] == pytest.approx(2 * 2 / (2 * 2 + 4))
