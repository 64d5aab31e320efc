"""SoundNet-8 (Aytar, Vondrick, Torralba 2016) as a frozen audio encoder.

Input: mono 22050 Hz in [-1, 1], scaled by 256 as the original. conv1-conv7 are
Conv1d -> BatchNorm (eps 1e-5, Torch7's default; the weights come from Torch7) -> ReLU, with
max-pools (kernel = stride, floor) after conv1 (8), conv2 (8) and conv5 (4). A 10 s window
(220500 samples) gives conv7 8 steps and conv8 one step, the paper's 1000-d object vector.
The embedding is the chosen layer's output averaged over time (one step for conv8 on 10 s);
conv8/conv8_2 are the raw pre-softmax scores.

Weights: the original `sound8.npy` (restricted unpickler: numpy arrays only), a Keras HDF5
file (layers conv1..conv8, conv8_2 and bn1..bn7), or a torch state dict of this module.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emokd.constants import AUDIO_WINDOW_S, SAMPLE_RATE
from emokd.errors import WeightsError
from emokd.models import keras_h5
from emokd.models.encoder import FrozenEncoder
from emokd.models.state import load_checked, torch_load_safely, unwrap_state_dict
from emokd.models.weights import asset_path

# name, out channels, kernel, stride, padding, max-pool after (1 = none)
CONV_LAYERS = (
    ("conv1", 16, 64, 2, 32, 8), ("conv2", 32, 32, 2, 16, 8), ("conv3", 64, 16, 2, 8, 1),
    ("conv4", 128, 8, 2, 4, 1), ("conv5", 256, 4, 2, 2, 4), ("conv6", 512, 4, 2, 2, 1),
    ("conv7", 1024, 4, 2, 2, 1),
)
HEADS = {"conv8": 1000, "conv8_2": 401}  # kernel 8, stride 2, no padding, no BN
OUTPUT_DIMS = {"conv7": 1024, **HEADS}
TRUNK_LAYERS = ("conv1", "conv2")  # conv1..pool2: total stride 256 samples
TRUNK_STRIDE = 256
BN_EPS = 1e-5
INPUT_SCALE = 256.0

# Default audio mode of extraction (emokd.extract.config maps it to "shared-trunk" / "per-window"):
# "trunk" shares conv1..pool2 over the whole track, "window" runs every 10 s window on its own.
# Chosen from benchmarks/audio_modes.py (docs/benchmarks.md, section "SoundNet audio modes").
SOUNDNET_DEFAULT_MODE = "trunk"


def layer_steps(n_samples: int) -> dict[str, int]:
    """Output length of every layer (after its pool) for n_samples of input; < 1 means too short."""
    steps, length = {}, n_samples
    for name, _c, k, s, p, pool in CONV_LAYERS:
        length = max((length + 2 * p - k) // s + 1, 0) // pool
        steps[name] = length
    for head in HEADS:
        steps[head] = max((length - 8) // 2 + 1, 0)
    return steps


class SoundNet8(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        in_ch = 1
        for i, (name, out_ch, k, s, p, _pool) in enumerate(CONV_LAYERS, start=1):
            setattr(self, name, nn.Conv1d(in_ch, out_ch, k, s, p))
            setattr(self, f"bn{i}", nn.BatchNorm1d(out_ch, eps=BN_EPS))
            in_ch = out_ch
        self.conv8 = nn.Conv1d(1024, HEADS["conv8"], 8, 2, 0)
        self.conv8_2 = nn.Conv1d(1024, HEADS["conv8_2"], 8, 2, 0)

    def block(self, index: int, x: torch.Tensor) -> torch.Tensor:
        name, _c, _k, _s, _p, pool = CONV_LAYERS[index]
        x = F.relu(getattr(self, f"bn{index + 1}")(getattr(self, name)(x)))
        return F.max_pool1d(x, pool, pool) if pool > 1 else x

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """conv1..pool2 on (B, 1, n) scaled audio -> (B, 32, steps), one step per 256 samples."""
        return self.block(1, self.block(0, x))

    def tail(self, h: torch.Tensor, layer: str = "conv8") -> torch.Tensor:
        """conv3.. on trunk output -> the layer's (B, C, T) output."""
        for index in range(2, len(CONV_LAYERS)):
            h = self.block(index, h)
        return h if layer == "conv7" else getattr(self, layer)(h)

    def forward(self, x: torch.Tensor, layer: str = "conv8") -> torch.Tensor:
        return self.tail(self.trunk(x), layer)


def _load_npy_dict(path: Path) -> dict:
    """The pickled dict inside sound8.npy, unpickling numpy arrays only (never arbitrary objects)."""
    allowed = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    class ArraysOnly(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) not in allowed:
                raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
            return super().find_class(module, name)

    if not path.is_file():
        raise WeightsError(f"{path}: SoundNet weights file not found")
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            _shape, _order, dtype = read_header(f)
            if dtype != np.dtype(object):
                raise ValueError(f"expected a pickled dict, found an array of {dtype}")
            obj = ArraysOnly(f, encoding="latin1").load()
        obj = obj.item() if isinstance(obj, np.ndarray) else obj
    except Exception as exc:  # numpy and pickle raise many types on damaged files
        raise WeightsError(f"{path}: not a readable sound8.npy (corrupt, truncated or not the original "
                           f"format): {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a dict of layers, found {type(obj).__name__}")
    return obj


def _expect(source, key: str, value, shape: tuple) -> np.ndarray:
    value = np.asarray(value, dtype=np.float32)
    if value.shape != shape:
        raise WeightsError(f"{source}: wrong architecture: key '{key}' has shape {value.shape}, expected {shape}")
    return value


def state_from_npy(layers: dict, source) -> dict[str, np.ndarray]:
    """sound8.npy dict (weights (k, 1, in, out), biases, gamma, beta, mean, var) -> our state dict."""
    state: dict[str, np.ndarray] = {}
    in_ch = 1
    specs = [(name, out, k, True, i) for i, (name, out, k, _s, _p, _pl) in enumerate(CONV_LAYERS, start=1)]
    specs += [(name, out, 8, False, 0) for name, out in HEADS.items()]
    for name, out_ch, k, has_bn, i in specs:
        cin = 1024 if not has_bn else in_ch
        needed = ("weights", "biases") + (("gamma", "beta", "mean", "var") if has_bn else ())
        if name not in layers:
            raise WeightsError(f"{source}: wrong architecture: missing key '{name}'")
        for sub in needed:
            if sub not in layers[name]:
                raise WeightsError(f"{source}: wrong architecture: missing key '{name}/{sub}'")
        entry = layers[name]
        w = _expect(source, f"{name}/weights", entry["weights"], (k, 1, cin, out_ch))
        state[f"{name}.weight"] = w[:, 0].transpose(2, 1, 0)  # -> (out, in, k)
        state[f"{name}.bias"] = _expect(source, f"{name}/biases", entry["biases"], (out_ch,))
        if has_bn:
            for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "mean"),
                                 ("running_var", "var")):
                state[f"bn{i}.{ours}"] = _expect(source, f"{name}/{theirs}", entry[theirs], (out_ch,))
            in_ch = out_ch
    return state


def state_from_keras(path: Path) -> dict[str, np.ndarray]:
    """Keras HDF5: Conv1D (k, in, out) or Conv2D (k, 1, in, out) kernels conv1..conv8_2, BN bn1..bn7."""
    layers = keras_h5.read_keras_h5(path)
    state: dict[str, np.ndarray] = {}
    for i, (name, *_rest) in enumerate(CONV_LAYERS, start=1):
        kernel, bias = keras_h5.layer_weights(layers, name, ("kernel", "bias"), path)
        state[f"{name}.weight"] = keras_h5.conv_kernel_to_torch(kernel.reshape(kernel.shape[0], *kernel.shape[-2:]))
        state[f"{name}.bias"] = bias
        state.update(keras_h5.bn_to_torch(f"bn{i}", *keras_h5.layer_weights(layers, f"bn{i}", keras_h5.BN_ORDER,
                                                                              path)))
    for name in HEADS:
        kernel, bias = keras_h5.layer_weights(layers, name, ("kernel", "bias"), path)
        state[f"{name}.weight"] = keras_h5.conv_kernel_to_torch(kernel.reshape(kernel.shape[0], *kernel.shape[-2:]))
        state[f"{name}.bias"] = bias
    return state


def load_soundnet_weights(net: SoundNet8, path: str | Path) -> None:
    path = Path(path)
    if path.suffix in (".h5", ".hdf5", ".keras"):
        state = state_from_keras(path)
    elif path.suffix == ".npy":
        state = state_from_npy(_load_npy_dict(path), path)
    else:
        state = unwrap_state_dict(torch_load_safely(path), path)
    load_checked(net, state, path)


class SoundNet8Encoder(FrozenEncoder):
    name = "soundnet8"
    kind = "audio"

    def __init__(self, layer: str = "conv8", window_s: float = AUDIO_WINDOW_S) -> None:
        super().__init__()
        if layer not in OUTPUT_DIMS:
            raise WeightsError(f"soundnet8: unknown layer '{layer}'; choose one of {sorted(OUTPUT_DIMS)}")
        self.layer = layer
        self.output_dim = OUTPUT_DIMS[layer]
        self.input_spec = {"sample_rate": SAMPLE_RATE, "window_s": float(window_s), "scale": INPUT_SCALE}
        self.net = SoundNet8()

    @classmethod
    def from_weights(cls, weights=None, layer=None, device="cpu",
                     window_s: float = AUDIO_WINDOW_S) -> "SoundNet8Encoder":
        """`window_s`: the window extraction runs with, as the record (input_spec) tells it."""
        path = Path(weights) if weights is not None else asset_path("soundnet8")
        encoder = cls(layer or "conv8", window_s)
        load_soundnet_weights(encoder.net, path)
        encoder.mark_loaded(path)
        return encoder.to(device)

    def prepare(self, batch: np.ndarray) -> torch.Tensor:
        """float32 (B, n) in [-1, 1] -> (B, 1, n) scaled to [-256, 256] on the encoder's device."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 2:
            raise ValueError(f"soundnet8: expected audio windows (B, n), got shape {batch.shape}")
        return (torch.from_numpy(batch) * INPUT_SCALE).unsqueeze(1).to(self.device)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if layer_steps(x.shape[-1])[self.layer] < 1:
            raise ValueError(f"soundnet8: {x.shape[-1]} samples are too short for layer {self.layer} "
                             f"(conv8 needs about 9.5 s at 22050 Hz)")
        return self.net(x, self.layer).mean(dim=2)

    def layer_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every layer's (B, C, T) output for prepared input x: what tests/models/test_soundnet.py checks
        the loaded weights against, layer by layer."""
        self._check_loaded()
        outs = {}
        with torch.inference_mode():
            h = x
            for index, (name, *_rest) in enumerate(CONV_LAYERS):
                h = self.net.block(index, h)
                outs[name] = h
            for head in HEADS:
                outs[head] = getattr(self.net, head)(h)
        return outs

    def encode_track(self, signal: np.ndarray, window_ends: np.ndarray, window_samples: int, mode: str,
                     batch_size: int | None = None) -> np.ndarray:
        """(n_frames, output_dim) for the windows ending at `window_ends`: mode "per-window" encodes
        every window on its own, "shared-trunk" runs conv1..pool2 once over the track and conv3..
        per window (emokd/models/soundnet_track.py, docs/encoders.md)."""
        from emokd.models.soundnet_track import encode_track

        self._check_loaded()
        return encode_track(self, signal, window_ends, window_samples, mode, batch_size)
