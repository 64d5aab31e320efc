"""ABAW metrics over a whole evaluation set (docs/training.md), numpy only.

Never averaged per batch (the reference code did, which made an AU absent from one batch or a
batch holding one expression class score 0 and drag the mean down).

Conventions (the same as scikit-learn with `zero_division=0`):
  * F1 of a class is 2TP / (2TP + FP + FN); when TP + FP + FN = 0 (the class is absent from the
    labels and never predicted) its F1 is 0, and it still counts in the mean.
  * EXPR: macro F1 over all 8 classes (`labels=range(8)`), whatever classes the subset holds.
  * AU: mean over the 12 AUs of the binary F1 of the positive class, predictions thresholded at 0.5.
  * CCC uses population (ddof=0) variances and covariance; when its denominator is 0 (both series
    constant and equal) it is 0.
  * P_MTL = mean(CCC_V, CCC_A) + F1_EXPR + F1_AU.
Missing labels (NaN VA, -1 EXPR/AU) are dropped per task before scoring.
"""

from __future__ import annotations

import numpy as np

from emokd.constants import N_EXPR


def ccc(pred: np.ndarray, true: np.ndarray) -> float:
    """Concordance correlation coefficient, population statistics."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.size == 0:
        return float("nan")
    mp, mt = pred.mean(), true.mean()
    cov = ((pred - mp) * (true - mt)).mean()
    denom = pred.var() + true.var() + (mp - mt) ** 2
    return float(2 * cov / denom) if denom > 0 else 0.0


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def expr_f1(pred: np.ndarray, true: np.ndarray, n_classes: int = N_EXPR) -> float:
    """Macro F1 over `n_classes` classes; `pred`, `true` integer class ids."""
    pred = np.asarray(pred).astype(np.int64)
    true = np.asarray(true).astype(np.int64)
    if true.size == 0:
        return float("nan")
    classes = np.arange(n_classes)[:, None]
    tp = ((pred == classes) & (true == classes)).sum(1)
    fp = ((pred == classes) & (true != classes)).sum(1)
    fn = ((pred != classes) & (true == classes)).sum(1)
    return float(f1_from_counts(tp, fp, fn).mean())


def au_f1_per_unit(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Binary F1 per AU column; `pred`, `true` (n, n_au) in {0, 1}."""
    pred = np.asarray(pred).astype(bool)
    true = np.asarray(true).astype(bool)
    tp = (pred & true).sum(0)
    fp = (pred & ~true).sum(0)
    fn = (~pred & true).sum(0)
    return f1_from_counts(tp, fp, fn)


def au_f1(pred: np.ndarray, true: np.ndarray) -> float:
    if np.asarray(true).shape[0] == 0:
        return float("nan")
    return float(au_f1_per_unit(pred, true).mean())


def va_mask(va: np.ndarray) -> np.ndarray:
    return ~np.isnan(va).any(axis=1)


def expr_mask(expr: np.ndarray) -> np.ndarray:
    return np.asarray(expr) >= 0


def au_mask(au: np.ndarray) -> np.ndarray:
    return (np.asarray(au) >= 0).all(axis=1)


def p_mtl(ccc_v: float, ccc_a: float, f1_expr: float, f1_au: float) -> float:
    """mean(CCC_V, CCC_A) + F1_EXPR + F1_AU over the tasks that have labels (NaN terms left out), so
    that a dataset labelling only some tasks still has a score to select and stop on; NaN if none."""
    terms = [(ccc_v + ccc_a) / 2, f1_expr, f1_au]
    present = [t for t in terms if t == t]
    return float(sum(present)) if present else float("nan")


def abaw_metrics(va_pred: np.ndarray, expr_pred: np.ndarray, au_pred: np.ndarray,
                 va_true: np.ndarray, expr_true: np.ndarray, au_true: np.ndarray) -> dict[str, float]:
    """The four ABAW metrics and P_MTL over every labelled frame.

    va_pred (n, 2) floats; expr_pred (n,) class ids; au_pred (n, 12) in {0, 1} (already thresholded);
    the labels use the cache's missing-value sentinels. A task with no labelled frame scores NaN and
    is left out of P_MTL (see `p_mtl`).
    """
    m = va_mask(va_true)
    ccc_v = ccc(va_pred[m, 0], va_true[m, 0])
    ccc_a = ccc(va_pred[m, 1], va_true[m, 1])
    m = expr_mask(expr_true)
    f1_e = expr_f1(expr_pred[m], expr_true[m])
    m = au_mask(au_true)
    f1_a = au_f1(au_pred[m], au_true[m])
    return {"ccc_v": ccc_v, "ccc_a": ccc_a, "f1_expr": f1_e, "f1_au": f1_a,
            "p_mtl": p_mtl(ccc_v, ccc_a, f1_e, f1_a)}


def chance_metrics(va_true: np.ndarray, expr_true: np.ndarray, au_true: np.ndarray) -> dict[str, float]:
    """Scores of label-blind baselines, for comparison in tests and benchmarks: VA constant (CCC 0),
    EXPR always the most frequent class, AU always 'active' (the best constant F1 per AU)."""
    e = np.asarray(expr_true)[expr_mask(expr_true)]
    a = np.asarray(au_true)[au_mask(au_true)]
    majority = np.bincount(e, minlength=N_EXPR).argmax() if e.size else 0
    f1_e = expr_f1(np.full_like(e, majority), e) if e.size else float("nan")
    f1_a = au_f1(np.ones_like(a), a) if a.size else float("nan")
    return {"ccc_v": 0.0, "ccc_a": 0.0, "f1_expr": f1_e, "f1_au": f1_a, "p_mtl": p_mtl(0, 0, f1_e, f1_a)}
