"""The frozen-encoder interface and its registry (docs/architecture.md, "emokd/models").

An encoder is built only from real weights: `build_encoder(name)` takes the pinned default
from the weights store, or a user's file; a network whose weights were never loaded refuses
to encode (WeightsError), so random weights can never pass for pretrained ones.
Encoders and their weights: docs/encoders.md.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np
import torch

from emokd.errors import WeightsError
from emokd.models.weights import sha256_file

# Encoder name -> "module:Class"; the class is imported only when that encoder is built, and its
# `name` attribute is this same key. To add an encoder: write its module (a FrozenEncoder
# subclass with a `from_weights` classmethod) and add one line here.
ENCODERS: dict[str, str] = {
    "fer_drer": "emokd.models.fer_drer:DrerEncoder",
    "fer_pyemotion": "emokd.models.fer_pyemotion:FerPyEmotionEncoder",
    "onnx": "emokd.models.onnx_encoder:OnnxEncoder",
    "soundnet8": "emokd.models.soundnet:SoundNet8Encoder",
    "torchscript": "emokd.models.torchscript_encoder:TorchScriptEncoder",
}
# A user's file (ONNX / TorchScript) is a face or an audio encoder as the caller says (`kind`).
EXTERNAL = ("onnx", "torchscript")

# Old name -> current name: still accepted (with a FutureWarning) in emokd 0.1.x, removed in 0.2.
RENAMED_ENCODERS: dict[str, str] = {"fer_default": "fer_pyemotion"}


def list_encoders() -> list[str]:
    """Every name `build_encoder` takes: the registry and the presets of public model files."""
    from emokd.models.presets import PRESETS

    return sorted(ENCODERS) + sorted(PRESETS)


def encoder_name(name: str) -> str:
    """The current registry name for `name` (an old name warns and maps to its new one)."""
    if name in RENAMED_ENCODERS:
        new = RENAMED_ENCODERS[name]
        warnings.warn(f"encoder '{name}' is now called '{new}'; the old name will stop working in the next "
                      f"version: write face_encoder: {new} (or --face-encoder {new})", FutureWarning,
                      stacklevel=2)
        return new
    from emokd.models.presets import PRESETS

    if name not in ENCODERS and name not in PRESETS:
        raise WeightsError(f"unknown encoder '{name}'; known: {list_encoders()}")
    return name


def encoder_class(name: str) -> type[FrozenEncoder]:
    from emokd.models.presets import PRESETS

    name = encoder_name(name)
    module, _, attr = ENCODERS[PRESETS[name].format if name in PRESETS else name].partition(":")
    return getattr(importlib.import_module(module), attr)


def build_encoder(name: str, weights: str | Path | None = None, layer: str | None = None,
                  device: str | torch.device = "cpu", window_s: float | None = None, kind: str | None = None,
                  input_spec: dict | None = None) -> FrozenEncoder:
    """weights=None -> the pinned default from the store (missing -> WeightsError, never random).

    `window_s`: the audio window (seconds) an audio encoder is run with, so its record tells it;
    None keeps the encoder's default. Face encoders take no window.
    `kind`: "face" or "audio", the slot the encoder fills: a user's file (onnx, torchscript, a
    preset) becomes that kind; a built-in encoder of the other kind is refused.
    `input_spec`: the preprocessing of a user's file (emokd/models/input_spec.py); built-in
    encoders have their own and refuse one.
    """
    from emokd.models.presets import PRESETS

    name = encoder_name(name)
    cls = encoder_class(name)
    if name in EXTERNAL or name in PRESETS:
        if name in PRESETS and kind == "audio":
            raise WeightsError(f"encoder '{name}' is a face model preset: it cannot be the audio encoder")
        if window_s is not None and kind != "audio":
            raise WeightsError(f"encoder '{name}' as a face encoder takes no audio window_s")
        return cls.from_weights(weights=weights, layer=layer, device=device, kind=kind or "face",
                                input_spec=input_spec, preset=name if name in PRESETS else None,
                                window_s=window_s)
    if kind is not None and kind != cls.kind:
        raise WeightsError(f"encoder '{cls.name}' makes {cls.kind} features: it cannot be the {kind} encoder")
    if input_spec:
        raise WeightsError(f"encoder '{cls.name}' has its own fixed preprocessing: an input spec "
                           f"({sorted(input_spec)}) applies to onnx / torchscript files only")
    options = {}
    if window_s is not None:
        if cls.kind != "audio":
            raise WeightsError(f"encoder '{cls.name}' is a {cls.kind} encoder: it takes no audio window_s")
        options["window_s"] = float(window_s)
    return cls.from_weights(weights=weights, layer=layer, device=device, **options)


class FrozenEncoder(torch.nn.Module):
    name: str = ""
    kind: str = ""  # "face" | "audio"
    output_dim: int = 0
    layer: str = ""
    input_spec: dict = {}

    def __init__(self) -> None:
        super().__init__()
        self.weights_sha256: str | None = None
        self.weights_file: str | None = None

    @classmethod
    def from_weights(cls, weights=None, layer=None, device="cpu") -> FrozenEncoder:
        """The encoder with its weights loaded (`build_encoder` calls this)."""
        raise NotImplementedError

    def mark_loaded(self, path: str | Path) -> None:
        """Record the identity of the weights just loaded; only then may the encoder run."""
        self.weights_file = str(path)
        self.weights_sha256 = sha256_file(path)
        self.eval()
        for param in self.parameters():
            param.requires_grad_(False)

    def _check_loaded(self) -> None:
        if self.weights_sha256 is None:
            raise WeightsError(f"encoder '{self.name}' has no loaded weights: refusing to run with random "
                               f"weights; build it with build_encoder('{self.name}', weights=...) or run "
                               f"`emokd weights fetch`")

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def prepare(self, batch: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, output_dim) float32, in inference mode."""
        self._check_loaded()
        with torch.inference_mode():
            out = self.forward_features(batch)
        return out.float()

    def encode_numpy(self, batch: np.ndarray) -> np.ndarray:
        return self.encode(self.prepare(batch)).cpu().numpy()

    def record(self) -> dict:
        self._check_loaded()
        return {"name": self.name, "kind": self.kind, "output_dim": int(self.output_dim),
                "layer": self.layer, "input_spec": dict(self.input_spec),
                "weights_sha256": self.weights_sha256}


def faces_to_tensor(batch: np.ndarray, where: str) -> torch.Tensor:
    """uint8 RGB (B, H, W, 3), H = W -> float tensor (B, 3, H, W) in [0, 255]."""
    batch = np.asarray(batch)
    if batch.ndim != 4 or batch.shape[-1] != 3 or batch.shape[1] != batch.shape[2]:
        raise ValueError(f"{where}: expected uint8 RGB faces (B, H, W, 3) with H = W, got {batch.shape}")
    if batch.dtype != np.uint8:
        raise ValueError(f"{where}: expected uint8 faces, got {batch.dtype}")
    batch = np.ascontiguousarray(batch) if batch.flags.writeable else batch.copy()  # torch wants writable
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float()
