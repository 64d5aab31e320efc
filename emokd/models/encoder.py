"""The frozen-encoder interface and its registry (docs/architecture.md, "emokd/models").

An encoder is built only from real weights: `build_encoder(name)` takes the pinned default
from the weights store, or a user's file; a network whose weights were never loaded refuses
to encode (WeightsError), so random weights can never pass for pretrained ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from emokd.errors import WeightsError
from emokd.models.weights import sha256_file

_REGISTRY: dict[str, Callable[..., "FrozenEncoder"]] = {}


def register_encoder(name: str):
    """Class decorator: the class's `from_weights(weights, layer, device)` builds encoder `name`."""
    def wrap(cls):
        _REGISTRY[name] = cls.from_weights
        return cls
    return wrap


def list_encoders() -> list[str]:
    _import_builtin()
    return sorted(_REGISTRY)


def build_encoder(name: str, weights: str | Path | None = None, layer: str | None = None,
                  device: str | torch.device = "cpu") -> "FrozenEncoder":
    """weights=None -> the pinned default from the store (missing -> WeightsError, never random)."""
    _import_builtin()
    if name not in _REGISTRY:
        raise WeightsError(f"unknown encoder '{name}'; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name](weights=weights, layer=layer, device=device)


def _import_builtin() -> None:
    from emokd.models import fer_default, fer_drer, soundnet  # noqa: F401  (they register themselves)


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
