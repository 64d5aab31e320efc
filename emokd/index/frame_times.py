"""Frame times from a container's packet timestamps, repaired where single stamps are wrong.

Recorders (phones, screen and webcam capture, remuxers) write an occasional duplicated or
missing timestamp. One bad stamp must not cost the whole video its times (k / fps would then put
every frame after a pause seconds early), so a bad stamp is repaired where it occurs, from its
neighbours, and counted. The rules (docs/datasets.md, "What emokd does with each quirk"):

- A missing pts takes the packet's decode time (dts) when it has one; stamps still missing are
  interpolated by packet position between their neighbours (extrapolated at the ends).
- Stamps are put in presentation order (sorted). A run of equal stamps keeps the stamp on one
  frame of the run and spreads the others evenly between it and the run's neighbours; the frame
  kept is the one that leaves the intervals around the run closest to the stream's typical frame
  interval (a recorder that repeats the previous stamp keeps the first frame, one that writes the
  next stamp early keeps the last; a pause next to the run stays a pause).
- The times are unusable as a whole, and the caller falls back to k / fps, only when fewer than
  half of the frames carry a stamp of their own (present and distinct).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FrameStamps:
    """Presentation-order frame stamps in the stream's time base (float: repairs fall between ticks)."""

    values: np.ndarray | None           # float64 (n,), strictly increasing; None: unusable as a whole
    repaired: list[int] = field(default_factory=list)   # frames (presentation order) repaired


def _even(left: float, right: float, count: int) -> np.ndarray:
    """`count` values evenly spaced strictly between left and right."""
    return left + (right - left) * np.arange(1, count + 1) / (count + 1)


def _candidates(values: np.ndarray, i: int, j: int):
    """For a run values[i..j] of one stamp v: the run's new values, one per frame that may keep v."""
    v, m = float(values[i]), j - i + 1
    prev = float(values[i - 1]) if i > 0 else None
    nxt = float(values[j + 1]) if j + 1 < len(values) else None
    for keep in ([0] if prev is None else range(m)):      # a run at the start keeps frame 0's time
        before = _even(prev, v, keep) if keep else np.zeros(0)
        if nxt is not None:
            after = _even(v, nxt, m - 1 - keep)
        else:                                             # a run at the end: the previous spacing
            after = v + (v - prev) * np.arange(1, m - keep)
        yield np.concatenate([before, [v], after])


def _repair_run(values: np.ndarray, i: int, j: int, spacing: float) -> None:
    """Replace the run values[i..j] of equal stamps by the candidate whose frame intervals stay
    closest to the stream's typical `spacing` (sum of |log(interval / spacing)|; ties: the first)."""
    prev, nxt = values[max(i - 1, 0):i], values[j + 1:j + 2]
    best, best_cost = None, np.inf
    for run in _candidates(values, i, j):
        diffs = np.diff(np.concatenate([prev, run, nxt]))
        cost = float(np.abs(np.log(diffs / spacing)).sum()) if np.all(diffs > 0) else np.inf
        if best is None or cost < best_cost - 1e-9:
            best, best_cost = run, cost
    values[i:j + 1] = best


def _fill_missing(raw: list) -> np.ndarray:
    """Packet-order stamps with None interpolated by position (extrapolated at the ends)."""
    values = np.array([np.nan if r is None else float(r) for r in raw])
    known = np.flatnonzero(~np.isnan(values))
    idx = np.arange(len(values))
    filled = np.interp(idx, known, values[known])
    if len(known) > 1:
        step = (values[known[-1]] - values[known[0]]) / (known[-1] - known[0])
        filled[idx > known[-1]] = values[known[-1]] + step * (idx[idx > known[-1]] - known[-1])
        filled[idx < known[0]] = values[known[0]] - step * (known[0] - idx[idx < known[0]])
    return filled


def repair_stamps(pts: list, dts: list) -> FrameStamps:
    """Presentation-order stamps of one stream from its packets' pts and dts (None where absent)."""
    raw = [p if p is not None else d for p, d in zip(pts, dts)]
    n = len(raw)
    distinct = len({r for r in raw if r is not None})
    if n == 0 or distinct * 2 < n or (n > 1 and distinct < 2):
        return FrameStamps(None)
    filled = _fill_missing(raw)
    order = np.argsort(filled, kind="stable")
    values = filled[order]
    changed = np.zeros(n, bool)
    changed[np.flatnonzero([raw[k] is None for k in order])] = True
    steps = np.diff(values)
    spacing = float(np.median(steps[steps > 0])) if np.any(steps > 0) else 1.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[j + 1] == values[i]:
            j += 1
        if j > i:
            before = values[i:j + 1].copy()
            _repair_run(values, i, j, spacing)
            changed[i:j + 1] |= values[i:j + 1] != before
        i = j + 1
    return FrameStamps(values, np.flatnonzero(changed).tolist())
