"""Render one video's alignment picture: face crops over time, the audio waveform under them,
and the per-frame labels and predictions on the same time axis (a PNG, matplotlib Agg).

Everything shares one x axis in seconds of the video's own clock (frame presentation times from
the cache, audio placed on that clock by the decoder), so a face, the sound it makes and the label
of that frame line up vertically; an off-by-one or a shifted audio track is visible by eye.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from emokd.constants import AU_NAMES, EXPR_CLASSES  # noqa: E402


@dataclass
class InspectData:
    """What one picture shows. Per-frame arrays have n = number of frames of the video."""

    video_id: str
    pts: np.ndarray                       # (n,) float64 s, frame presentation times
    frame_end: np.ndarray                 # (n,) float64 s, end of each frame's display interval
    crop_index: np.ndarray                # (k,) int64 frame indices of the shown crops
    crops: np.ndarray                     # (k, S, S, 3) uint8 face crops (zeros where no face)
    crop_face_ok: np.ndarray              # (k,) bool
    signal: np.ndarray | None = None      # mono float32 audio, sample 0 = video time 0
    sample_rate: int = 22050
    audio_ok: np.ndarray | None = None    # (n,) bool per frame
    face_ok: np.ndarray | None = None     # (n,) bool per frame
    labels: dict | None = None            # va (n,2) NaN, expr (n,) -1, au (n,12) -1
    predictions: dict | None = None       # the tasks a run predicts: va (n,2), expr (n,) int,
                                          # au (n,12) probabilities or 0/1 (any may be absent)
    prediction_name: str = "prediction"
    notes: list[str] = field(default_factory=list)


def pick_frames(n_frames: int, count: int) -> np.ndarray:
    """`count` frame indices spread evenly over 0..n_frames-1, first and last included."""
    if n_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    count = max(1, min(count, n_frames))
    if count == 1:
        return np.zeros(1, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, n_frames - 1, count)).astype(np.int64))


def waveform_envelope(signal: np.ndarray, sample_rate: int, t_end: float, bins: int = 2000):
    """Min/max of the signal in `bins` equal time bins over [0, t_end]: (times, low, high)."""
    n = int(round(t_end * sample_rate))
    sig = np.zeros(n, dtype=np.float32)
    m = min(n, len(signal))
    sig[:m] = signal[:m]
    bins = max(1, min(bins, n))
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    low = np.array([sig[a:b].min() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:])])
    high = np.array([sig[a:b].max() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:])])
    times = (edges[:-1] + edges[1:]) / 2.0 / sample_rate
    return times, low, high


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a boolean mask as (start, stop) index pairs."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    diff = np.diff(padded.astype(np.int8))
    return list(zip(np.flatnonzero(diff == 1), np.flatnonzero(diff == -1)))


def _shade_false(ax, ok: np.ndarray | None, pts, frame_end, colour: str, label: str) -> None:
    if ok is None:
        return
    first = True
    for a, b in _spans(~ok.astype(bool)):
        ax.axvspan(pts[a], frame_end[b - 1], color=colour, alpha=0.18, lw=0,
                   label=label if first else None)
        first = False


def _masked_va(va: np.ndarray) -> np.ndarray:
    va = np.asarray(va, dtype=np.float64).copy()
    va[~np.isfinite(va)] = np.nan
    return va


def render_inspect(data: InspectData, out: str | Path, dpi: int = 110) -> Path:
    """Draw the picture described in the module docstring into `out` (PNG); returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pts, frame_end = np.asarray(data.pts, float), np.asarray(data.frame_end, float)
    t0, t1 = 0.0, float(frame_end[-1]) if len(frame_end) else 1.0
    has_labels = data.labels is not None
    has_pred = data.predictions is not None
    rows = ["faces", "audio"]
    if has_labels or has_pred:
        rows += ["va", "expr", "au"]
    heights = {"faces": 1.6, "audio": 1.1, "va": 1.3, "expr": 1.1, "au": 1.6}
    fig, axes = plt.subplots(len(rows), 1, figsize=(14, sum(heights[r] for r in rows) + 0.9),
                             sharex=True, gridspec_kw={"height_ratios": [heights[r] for r in rows]})
    ax = dict(zip(rows, np.atleast_1d(axes)))
    fig.suptitle(f"{data.video_id}: {len(pts)} frames, {t1:.2f} s — faces, sound and labels "
                 "on the video's clock", fontsize=11)

    _draw_faces(ax["faces"], data, pts, frame_end, t1)
    _draw_audio(ax["audio"], data, pts, frame_end, t1)
    if "va" in ax:
        _draw_va(ax["va"], data, pts)
        _draw_expr(ax["expr"], data, pts)
        _draw_au(ax["au"], data, pts, frame_end)
    for name, a in ax.items():
        for k in data.crop_index:
            a.axvline(pts[k], color="tab:purple", lw=0.6, alpha=0.45, zorder=0)
        a.set_xlim(t0, t1)
    ax[rows[-1]].set_xlabel("time in the video (s)")
    if data.notes:
        fig.text(0.01, 0.005, " · ".join(data.notes), fontsize=7, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def _draw_faces(a, data: InspectData, pts, frame_end, t1) -> None:
    """Crops in equal slots left to right (time order); a line joins each to its frame's time."""
    k = len(data.crop_index)
    slot = t1 / max(k, 1)
    for i, (idx, crop, ok) in enumerate(zip(data.crop_index, data.crops, data.crop_face_ok)):
        left = i * slot + slot * 0.04
        width = slot * 0.92
        a.imshow(crop if ok else np.full_like(crop, 200), extent=(left, left + width, 0.18, 1.0),
                 aspect="auto", interpolation="bilinear", zorder=2)
        a.plot([left + width / 2, pts[idx]], [0.18, 0.0], color="tab:purple", lw=0.8)
        a.text(left + width / 2, 1.02, f"#{idx}  {pts[idx]:.2f}s" + ("" if ok else "  no face"),
               ha="center", va="bottom", fontsize=7)
    a.set_ylim(0, 1.15)
    a.set_yticks([])
    a.set_ylabel("face crops\n(frame #, time)", fontsize=8)


def _draw_audio(a, data: InspectData, pts, frame_end, t1) -> None:
    if data.signal is not None and len(data.signal):
        times, low, high = waveform_envelope(data.signal, data.sample_rate, t1)
        a.fill_between(times, low, high, color="tab:blue", lw=0, step="mid")
        peak = float(max(np.abs(low).max(), np.abs(high).max(), 1e-6))
        a.set_ylim(-peak * 1.1, peak * 1.1)
    else:
        a.text(0.5, 0.5, "no audio track", transform=a.transAxes, ha="center", va="center")
    _shade_false(a, data.audio_ok, pts, frame_end, "tab:red", "no audio")
    _shade_false(a, data.face_ok, pts, frame_end, "0.5", "no face")
    a.set_ylabel(f"audio\n{data.sample_rate} Hz", fontsize=8)
    if a.get_legend_handles_labels()[0]:
        a.legend(loc="upper right", fontsize=7)


def _draw_va(a, data: InspectData, pts) -> None:
    if data.labels is not None:
        va = _masked_va(data.labels["va"])
        a.plot(pts, va[:, 0], color="tab:green", lw=1.2, label="valence (label)")
        a.plot(pts, va[:, 1], color="tab:orange", lw=1.2, label="arousal (label)")
    if data.predictions is not None and "va" in data.predictions:
        va = _masked_va(data.predictions["va"])
        a.plot(pts, va[:, 0], color="tab:green", lw=1, ls="--", label=f"valence ({data.prediction_name})")
        a.plot(pts, va[:, 1], color="tab:orange", lw=1, ls="--", label=f"arousal ({data.prediction_name})")
    a.set_ylim(-1.05, 1.05)
    a.set_ylabel("VA", fontsize=8)
    a.legend(loc="upper right", fontsize=6, ncol=2)


def _draw_expr(a, data: InspectData, pts) -> None:
    if data.labels is not None:
        expr = np.asarray(data.labels["expr"], float)
        expr[expr < 0] = np.nan
        a.step(pts, expr, where="post", color="black", lw=1.2, label="label")
    if data.predictions is not None and "expr" in data.predictions:
        pred = np.asarray(data.predictions["expr"], float)
        pred[pred < 0] = np.nan
        a.plot(pts, pred, ".", ms=2.5, color="tab:red", label=data.prediction_name)
    a.set_yticks(range(len(EXPR_CLASSES)))
    a.set_yticklabels(EXPR_CLASSES, fontsize=6)
    a.set_ylim(-0.5, len(EXPR_CLASSES) - 0.5)
    a.set_ylabel("EXPR", fontsize=8)
    a.legend(loc="upper right", fontsize=6)


def _draw_au(a, data: InspectData, pts, frame_end) -> None:
    """Labels in the upper half of each AU row, predictions in the lower half; grey = missing."""
    n_au = len(AU_NAMES)
    extent = (pts[0], frame_end[-1], n_au - 0.5, -0.5)
    cmap = matplotlib.colormaps["Greens"].with_extremes(bad="0.85")
    sources = [s for s in (data.labels, data.predictions) if s is not None and "au" in s]
    both = len(sources) == 2
    image = np.full((n_au * 2 if both else n_au, len(pts)), np.nan)
    for j, source in enumerate(sources):
        au = np.asarray(source["au"], float).T
        au[au < 0] = np.nan
        if both:
            image[j::2] = au
        else:
            image[:] = au
    a.imshow(image, extent=extent, aspect="auto", cmap=cmap, vmin=0, vmax=1,
             interpolation="nearest")
    a.set_yticks(range(n_au))
    a.set_yticklabels(AU_NAMES, fontsize=6)
    title = ("AU: upper half of each row label, lower half " + data.prediction_name) if both else "AU"
    a.set_ylabel("AU", fontsize=8)
    a.set_title(title, fontsize=7, loc="left", pad=2)
