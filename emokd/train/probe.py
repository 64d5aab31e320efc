"""Linear probes of a cache's frozen features: which encoder to train on, before any training.

For every feature set of the cache (each face and audio array its encoder records name, and each
face array joined with the audio array) and every task, a linear model is fitted on the training
split's labelled frames and scored on the validation split's (docs/encoders.md, "emokd probe"):
- VA: ridge regression of valence and arousal -> CCC of each;
- EXPR: multinomial logistic regression -> macro F1 over the 8 classes;
- AU: one logistic regression per AU -> mean F1 over the 12 AUs (threshold 0.5).
Features are standardised with the training statistics. Only frames with a face are used, for
every feature set, so that all rows score the same frames. Training frames are subsampled to
`max_train` per task (neighbouring video frames are nearly copies: a few thousand frames carry
what a linear model can learn), validation frames to `max_validation`. The metrics are
emokd.train.metrics' (those of training and evaluation); a chance row (constant VA, majority
expression, every AU on) says what no information scores.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from emokd.constants import N_AU, N_EXPR, TASKS, uniform_splits
from emokd.errors import CacheError, DataError
from emokd.train.metrics import au_f1, ccc, chance_metrics, expr_f1

log = logging.getLogger(__name__)

COLUMNS = ("features", "dim", "ccc_v", "ccc_a", "f1_expr", "f1_au", "p_mtl", "n_train_va", "n_val_va",
           "n_train_expr", "n_val_expr", "n_train_au", "n_val_au", "seconds")


@dataclass
class ProbeConfig:
    max_train: int = 20000               # training frames per task at most (random subsample)
    max_validation: int = 50000          # validation frames per task at most (random subsample)
    ridge_alpha: float = 1.0             # ridge penalty of the VA probe (on standardised features)
    logistic_c: float = 1.0              # inverse penalty of the EXPR and AU logistic probes
    max_iter: int = 300                  # solver iterations of each logistic regression
    seed: int = 0                        # subsampling seed
    face_features: str | None = None     # one face feature array only (default: every face array)
    audio_features: str | None = None    # one audio feature array only (default: every audio array)
    threads: int = 1                     # BLAS/OpenMP threads of the solvers (more oversubscribe a shared machine;
                                         # one thread also makes the figures reproducible to the last digit)


@dataclass
class ProbeData:
    features: dict[str, np.ndarray]      # array name -> (N, D) float32, frames with a face only
    split: dict[str, np.ndarray]         # task -> (N,) "train" | "validation" | other (per-task splits)
    va: np.ndarray                       # (N, 2) float32, NaN = missing
    expr: np.ndarray                     # (N,) int, -1 = missing
    au: np.ndarray                       # (N, 12) int, -1 = missing


def feature_sets(cache, cfg: ProbeConfig) -> tuple[list[str], list[str]]:
    """The face and the audio arrays to probe, from the cache's encoder records."""
    face = [r["array"] for r in cache.encoders if r.get("kind") == "face"]
    audio = [r["array"] for r in cache.encoders if r.get("kind") == "audio"]
    for kind, wanted, names in (("face", cfg.face_features, face), ("audio", cfg.audio_features, audio)):
        if wanted is not None and wanted not in names:
            raise CacheError(f"cache {cache.url}: no {kind} features named {wanted!r}; it has {names}")
    face = [cfg.face_features] if cfg.face_features else face
    audio = [cfg.audio_features] if cfg.audio_features else audio
    if not face and not audio:
        raise CacheError(f"cache {cache.url}: no face or audio feature arrays to probe")
    return face, audio


def load_probe_data(cache, arrays: list[str]) -> ProbeData:
    """The labelled frames with a face of the train and validation videos, through the cache API."""
    parts = {name: [] for name in arrays}
    splits, va, expr, au = {task: [] for task in TASKS}, [], [], []
    for vid in cache.video_ids():
        if not cache.has_labels(vid):
            continue
        lab = cache.read_labels(vid)
        # labels written before per-task splits carry one split for every task
        task_split = lab.get("splits") or uniform_splits(lab["split"])
        if not {"train", "validation"} & {task_split[task] for task in TASKS}:
            continue
        got = cache.read_video(vid, [*arrays, "face_ok"])
        n = min(len(got["face_ok"]), len(lab["va"]))
        keep = np.flatnonzero(np.asarray(got["face_ok"][:n], bool))
        for name in arrays:
            parts[name].append(np.asarray(got[name][:n][keep], np.float32))
        for task in TASKS:
            splits[task].append(np.full(len(keep), task_split[task], dtype=object))
        va.append(lab["va"][:n][keep]), expr.append(lab["expr"][:n][keep]), au.append(lab["au"][:n][keep])
    if not va:
        raise DataError(f"cache {cache.url}: no labelled train/validation video to probe (relabel the cache "
                        f"with `emokd cache relabel DATASET CACHE`)")
    return ProbeData({name: np.concatenate(p) for name, p in parts.items()},
                     {task: np.concatenate(parts_) for task, parts_ in splits.items()},
                     np.concatenate(va).astype(np.float32), np.concatenate(expr).astype(np.int64),
                     np.concatenate(au).astype(np.int64))


def _rows(mask: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    rows = np.flatnonzero(mask)
    return np.sort(rng.choice(rows, limit, replace=False)) if len(rows) > limit else rows


def task_rows(data: ProbeData, cfg: ProbeConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per task, the (train, validation) frame rows used by every feature set."""
    rng = np.random.default_rng(cfg.seed)
    labelled = {"VA": ~np.isnan(data.va).any(1), "EXPR": data.expr >= 0, "AU": (data.au >= 0).all(1)}
    return {task: (_rows(mask & (data.split[task] == "train"), cfg.max_train, rng),
                   _rows(mask & (data.split[task] == "validation"), cfg.max_validation, rng))
            for task, mask in labelled.items()}


def fit_task(task: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, cfg: ProbeConfig) -> np.ndarray:
    """The probe's validation predictions: VA (n, 2) float, EXPR (n,) class, AU (n, 12) 0/1."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    if task == "VA":
        return Ridge(alpha=cfg.ridge_alpha).fit(x_train, y_train).predict(x_val)
    if task == "EXPR":
        classes = np.unique(y_train)
        if len(classes) == 1:
            return np.full(len(x_val), classes[0])
        model = LogisticRegression(C=cfg.logistic_c, max_iter=cfg.max_iter)
        return model.fit(x_train, y_train).predict(x_val)
    out = np.zeros((len(x_val), y_train.shape[1]), np.int64)
    for k in range(y_train.shape[1]):
        if len(np.unique(y_train[:, k])) == 1:  # an AU always off (or on) in training: predict that
            out[:, k] = y_train[0, k]
            continue
        model = LogisticRegression(C=cfg.logistic_c, max_iter=cfg.max_iter)
        out[:, k] = (model.fit(x_train, y_train[:, k]).predict_proba(x_val)[:, 1] >= 0.5).astype(np.int64)
    return out


def _labels(data: ProbeData, task: str, rows: np.ndarray) -> np.ndarray:
    return {"VA": data.va, "EXPR": data.expr, "AU": data.au}[task][rows]


def _score(task: str, pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    if not len(true):
        return {"VA": {"ccc_v": np.nan, "ccc_a": np.nan}, "EXPR": {"f1_expr": np.nan},
                "AU": {"f1_au": np.nan}}[task]
    if task == "VA":
        return {"ccc_v": ccc(pred[:, 0], true[:, 0]), "ccc_a": ccc(pred[:, 1], true[:, 1])}
    if task == "EXPR":
        return {"f1_expr": expr_f1(pred, true, N_EXPR)}
    return {"f1_au": au_f1(pred, true)}


def probe_features(x: np.ndarray, data: ProbeData, rows: dict, cfg: ProbeConfig, name: str) -> dict:
    """One row of the report: every task's probe on feature matrix `x`."""
    started = time.perf_counter()
    row: dict = {"features": name, "dim": int(x.shape[1])}
    for task in TASKS:
        train, val = rows[task]
        row[f"n_train_{task.lower()}"], row[f"n_val_{task.lower()}"] = len(train), len(val)
        if not len(train) or not len(val):
            row.update(_score(task, np.zeros(0), np.zeros(0)))
            continue
        pred = fit_task(task, x[train], _labels(data, task, train), x[val], cfg)
        row.update(_score(task, pred, _labels(data, task, val)))
    row["p_mtl"] = float(np.mean([row["ccc_v"], row["ccc_a"]]) + row["f1_expr"] + row["f1_au"])
    row["seconds"] = round(time.perf_counter() - started, 2)
    log.info("probe %s: %s", name, {k: v for k, v in row.items() if k != "features"})
    return row


def chance_row(data: ProbeData, rows: dict) -> dict:
    """The label-blind baselines on the same validation frames (emokd.train.metrics.chance_metrics)."""
    val = {task: _labels(data, task, rows[task][1]) for task in TASKS}
    scores = chance_metrics(val["VA"] if len(val["VA"]) else np.zeros((0, 2)),
                            val["EXPR"] if len(val["EXPR"]) else np.zeros(0, np.int64),
                            val["AU"] if len(val["AU"]) else np.zeros((0, N_AU), np.int64))
    row = {"features": "chance", "dim": 0, **scores, "seconds": 0.0}
    for task in TASKS:
        row[f"n_train_{task.lower()}"], row[f"n_val_{task.lower()}"] = 0, len(rows[task][1])
    return row


def run_probe(cache, cfg: ProbeConfig | None = None, progress=None) -> list[dict]:
    """The report's rows: chance, each face array, each audio array, and each face array + audio."""
    import sklearn.linear_model  # noqa: F401  (loaded before the limits: they cover the libraries loaded then)
    from threadpoolctl import threadpool_limits

    cfg = cfg or ProbeConfig()
    with threadpool_limits(limits=max(int(cfg.threads), 1)):
        return _run_probe(cache, cfg, progress)


def _run_probe(cache, cfg: ProbeConfig, progress) -> list[dict]:
    face, audio = feature_sets(cache, cfg)
    data = load_probe_data(cache, face + audio)
    rows = task_rows(data, cfg)
    if not any(len(val) for _train, val in rows.values()):
        raise DataError(f"cache {cache.url}: no labelled validation frame with a face to score the probes on")
    sets = [(name, data.features[name]) for name in face + audio]
    if face and audio:
        sets += [(f"{f}+{audio[0]}", np.concatenate([data.features[f], data.features[audio[0]]], axis=1))
                 for f in face]
    out = [chance_row(data, rows)]
    for name, x in sets:
        out.append(probe_features(x, data, rows, cfg, name))
        if progress is not None:
            progress(name)
    return out
