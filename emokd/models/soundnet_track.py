"""SoundNet over a whole audio track, one embedding per video frame (docs/architecture.md).

`encode_track(encoder, signal, window_ends, window_samples, mode)` gives (n_frames, output_dim)
in one of two modes:

- "per-window" (exact): every frame's window [end - W, end) is cut from the track by
  `emokd.models.audio_windows.audio_windows` (zeros before t = 0 and after the end) and encoded
  on its own, as the paper does.
- "shared-trunk": conv1..pool2 have a total stride of 256 samples, so output step m of the
  trunk over the whole track is the step 0 of any window starting at sample 256·m. The trunk is
  computed once over the zero-padded track (in chunks, so memory stays bounded for long videos)
  and conv3..conv8 run per window on a slice of it. Two consequences: each window start is
  rounded to the 256-sample grid (the window moves by at most ±128 samples = ±5.8 ms), and the
  first and last ~2 trunk steps of a window see the neighbouring audio instead of the window's
  own zero padding. benchmarks/audio_modes.py measures the difference.
"""

from __future__ import annotations

import numpy as np
import torch

from emokd.models.audio_windows import audio_windows
from emokd.models.soundnet import INPUT_SCALE, TRUNK_STRIDE, layer_steps

PER_WINDOW, SHARED_TRUNK = "per-window", "shared-trunk"
TRACK_MODES = (PER_WINDOW, SHARED_TRUNK)
# windows per batch when the caller does not say: an exact window holds its whole 10 s through
# conv1 (16 x 110k values), a shared-trunk window only its slice of the trunk
DEFAULT_BATCH = {PER_WINDOW: 4, SHARED_TRUNK: 64}

LEFT_HALO_STEPS = 2    # trunk step r depends on samples 256r-288 .. 256r+509
RIGHT_HALO_SAMPLES = 768


def trunk_steps(window_samples: int) -> int:
    """Number of conv1..pool2 output steps for a window of `window_samples` (floor pooling)."""
    conv1 = window_samples // 2 + 1          # kernel 64, stride 2, padding 32
    conv2 = (conv1 // 8) // 2 + 1            # pool 8; kernel 32, stride 2, padding 16
    return conv2 // 8                        # pool 8


def _check(signal, window_ends, window_samples, layer):
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise ValueError(f"soundnet8: expected a mono track (n,), got shape {signal.shape}")
    ends = np.asarray(window_ends, dtype=np.int64)
    if ends.ndim != 1:
        raise ValueError(f"soundnet8: expected window ends (n_frames,), got shape {ends.shape}")
    if layer_steps(window_samples)[layer] < 1:
        raise ValueError(f"soundnet8: a window of {window_samples} samples is too short for layer {layer}")
    return signal, ends


def trunk_over_span(net, signal: np.ndarray, first_step: int, n_steps: int, device,
                    chunk_steps: int = 4096) -> torch.Tensor:
    """Trunk output steps first_step .. first_step + n_steps - 1 of the track (step m starts at
    sample 256·m, m may be negative: zeros), computed in chunks; (32, n_steps) on `device`."""
    pieces = []
    for lo in range(first_step, first_step + n_steps, chunk_steps):
        hi = min(lo + chunk_steps, first_step + n_steps)
        halo = 0 if lo == first_step else LEFT_HALO_STEPS
        start = TRUNK_STRIDE * (lo - halo)
        stop = TRUNK_STRIDE * hi + RIGHT_HALO_SAMPLES
        piece = np.zeros(stop - start, dtype=np.float32)
        a, b = max(start, 0), min(stop, len(signal))
        if b > a:
            piece[a - start:b - start] = signal[a:b]
        x = torch.from_numpy(piece * INPUT_SCALE).to(device).view(1, 1, -1)
        h = net.trunk(x)[0]
        pieces.append(h[:, halo:halo + (hi - lo)])
    return torch.cat(pieces, dim=1)


def encode_track(encoder, signal, window_ends, window_samples: int, mode: str,
                 batch_size: int | None = None) -> np.ndarray:
    """float32 (n_frames, output_dim): the embedding of every frame's window, in `mode`."""
    if mode not in TRACK_MODES:
        raise ValueError(f"soundnet8: audio mode {mode!r} is not one of {list(TRACK_MODES)}")
    signal, ends = _check(signal, window_ends, window_samples, encoder.layer)
    out = np.zeros((len(ends), encoder.output_dim), dtype=np.float32)
    if len(ends) == 0:
        return out
    fill = _per_window if mode == PER_WINDOW else _shared_trunk
    fill(encoder, signal, ends, window_samples, batch_size or DEFAULT_BATCH[mode], out)
    return out


def _per_window(encoder, signal: np.ndarray, ends: np.ndarray, window_samples: int, batch_size: int,
                out: np.ndarray) -> None:
    """Fill `out` with the embeddings of the windows ending at `ends`, each encoded on its own."""
    for lo in range(0, len(ends), batch_size):
        batch = audio_windows(signal, ends[lo:lo + batch_size], window_samples)
        out[lo:lo + len(batch)] = encoder.encode_numpy(batch)


def _shared_trunk(encoder, signal: np.ndarray, ends: np.ndarray, window_samples: int, batch_size: int,
                  out: np.ndarray) -> None:
    """Fill `out` with the shared-trunk embeddings of the windows ending at `ends` (non-empty)."""
    steps = trunk_steps(window_samples)
    grid = np.floor((ends - window_samples) / TRUNK_STRIDE + 0.5).astype(np.int64)  # rounded start step
    first = int(grid.min())
    with torch.inference_mode():
        trunk = trunk_over_span(encoder.net, signal, first, int(grid.max()) - first + steps,
                                encoder.device)
        offsets = torch.arange(steps, device=trunk.device)
        for lo in range(0, len(ends), batch_size):
            starts = torch.from_numpy(grid[lo:lo + batch_size] - first).to(trunk.device)
            index = starts[:, None] + offsets[None, :]                      # (B, steps)
            windows = trunk[:, index].permute(1, 0, 2).contiguous()       # (B, 32, steps)
            feats = encoder.net.tail(windows, encoder.layer).mean(dim=2)
            out[lo:lo + len(feats)] = feats.float().cpu().numpy()
