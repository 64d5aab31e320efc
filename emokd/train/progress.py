"""What a training run shows while it runs (docs/training.md, "Watching a run").

On a terminal: a step bar per epoch with its total, rate and ETA (tqdm), and one line per epoch.
Piped to a file: no bar (no carriage returns), a plain progress line at most every `every_s`
seconds within a long epoch, and the same line per epoch. Every line also goes to the run's log.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator

from tqdm.auto import tqdm

from emokd.logs import duration, quiet

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, stream=None, every_s: float = 60.0):
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.quiet = quiet()             # -q: the log only

    def steps(self, steps: Iterable, desc: str) -> Iterator:
        """Iterate `steps` (sized) showing the bar, or plain lines when not on a terminal."""
        total = len(steps) if hasattr(steps, "__len__") else None
        if self.quiet:
            yield from steps
            return
        if self.terminal:
            yield from tqdm(steps, desc=desc, total=total, unit="step", leave=False, file=self.stream,
                            dynamic_ncols=True)
            return
        start = last = time.monotonic()
        for done, step in enumerate(steps):
            yield step
            now = time.monotonic()
            if now - last >= self.every_s and total:
                last = now
                rate = (done + 1) / (now - start)
                self.line(f"{desc}: step {done + 1}/{total} ({(done + 1) / total:.0%}), "
                          f"{duration(now - start)}, ETA {duration((total - done - 1) / rate)}")

    def line(self, text: str) -> None:
        """One line on the console (above the bar, if any) and in the log."""
        log.info("%s", text)
        if self.quiet:
            return
        if self.terminal:
            tqdm.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)


def _number(value) -> str:
    value = float(value)
    return "nan" if math.isnan(value) else f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def epoch_line(epoch: int, epochs: int, row: dict, loss_keys: tuple[str, ...], metric_keys: tuple[str, ...],
               score_key: str, best: float, best_epoch: int, seconds: float) -> str:
    """`epoch 3/20  train sup_VA 0.41 ... | val ccc_v 0.31 ... p_mtl 1.02 (best 1.05 @ 2) | 12.3s`
    (epochs counted from 1 here and in metrics.csv's `epoch` + 1)."""
    keys = sorted((k for k in row if k.startswith(loss_keys)),
                  key=lambda k: (next(i for i, p in enumerate(loss_keys) if k.startswith(p)), k))
    train = [f"{k} {_number(row[k])}" for k in keys]
    val = [f"{k} {_number(row[k])}" for k in metric_keys if k in row]
    best_text = f"best {_number(best)} @ {best_epoch + 1}" if best_epoch >= 0 else "no best yet"
    return (f"epoch {epoch + 1}/{epochs}  train {' '.join(train) or '-'} | val {' '.join(val)} "
            f"({score_key} {best_text}) | {seconds:.1f}s")
