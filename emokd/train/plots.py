"""curves.png of a run, redrawn after every epoch (docs/training.md, "Watching a run").

Three panels over epochs: the training losses a recipe names in `loss_keys` (unweighted parts:
a gamma-weighted total grows exponentially while a task stalls and reads like divergence), its
other training values (`curve_keys`, e.g. the discriminator's accuracy), and its validation
metrics (`metric_keys`), with the best epoch of `score_key` marked on every panel.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _values(rows: list[dict], key: str) -> list[float]:
    return [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in rows]


def best_epoch(rows: list[dict], score_key: str) -> int | None:
    """The epoch of the highest `score_key` (the first one on ties), None without a value."""
    scored = [(float(r[score_key]), -int(r["epoch"])) for r in rows if r.get(score_key) not in (None, "")
              and not math.isnan(float(r[score_key]))]
    return -max(scored)[1] if scored else None


def plot_curves(rows: list[dict], path: Path, loss_keys: tuple[str, ...], curve_keys: tuple[str, ...],
                metric_keys: tuple[str, ...], score_key: str) -> Path:
    """Write the three panels of `rows` (metrics.csv) to `path` (atomically: temporary file, rename)."""
    epochs = [int(r["epoch"]) + 1 for r in rows]              # shown from 1, as the console lines
    columns = list(dict.fromkeys(k for r in rows for k in r))
    fig, (losses, training, validation) = plt.subplots(1, 3, figsize=(15, 4))
    drawn = [k for k in columns if k.startswith(loss_keys)]
    for key in drawn:
        losses.plot(epochs, _values(rows, key), marker="o", label=key)
    positive = all(v > 0 for k in drawn for v in _values(rows, k) if not math.isnan(v))
    losses.set(title="training losses (unweighted)", xlabel="epoch", yscale="log" if drawn and positive else "linear")
    for key in (k for k in curve_keys if k in columns):
        training.plot(epochs, _values(rows, key), marker="o", label=key)
    training.set(title="training", xlabel="epoch")
    for key in (k for k in metric_keys if k in columns):
        validation.plot(epochs, _values(rows, key), marker="o", label=key,
                        linewidth=2.5 if key == score_key else 1.2)
    validation.set(title="validation", xlabel="epoch")
    best = best_epoch(rows, score_key)
    if best is not None:
        for ax in (losses, training, validation):
            ax.axvline(best + 1, color="grey", linestyle="--", linewidth=1, label=f"best epoch ({score_key})"
                       if ax is validation else None)
    for ax in (losses, training, validation):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path
