"""The PNG of a run's curves: losses per task and the recipe's metrics per epoch."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

def _values(rows: list[dict], key: str) -> list[float]:
    return [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in rows]


def plot_curves(rows: list[dict], path: Path, curves: tuple[str, ...]) -> Path:
    """Left: every `loss_*` column (log scale); right: the columns `curves`, in that order."""
    epochs = [int(r["epoch"]) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key in rows[0]:
        if key.startswith("loss_"):
            left.plot(epochs, _values(rows, key), marker="o", label=key)
    left.set(title="training losses", xlabel="epoch", yscale="log")
    left.legend(fontsize=8)
    for key in curves:
        if key in rows[0]:
            right.plot(epochs, _values(rows, key), marker="o", label=key)
    right.set(title="validation", xlabel="epoch")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
