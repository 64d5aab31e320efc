"""The shared half of encoders a user brings as a file (ONNX, TorchScript): input checks,
preprocessing from the spec (emokd/models/input_spec.py), the output vector, the record.

A subclass loads its file, says the model's input shape (`model_input_shape`, None where unknown)
and runs a prepared batch (`run`). Everything a file could get wrong is refused here with a message
naming the file and the tensor: a model input of another rank, channel count or size than the spec,
a layer that does not exist, an output that is not one vector per face.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from emokd.constants import AUDIO_WINDOW_S, SAMPLE_RATE
from emokd.errors import WeightsError
from emokd.models.encoder import FrozenEncoder, faces_to_tensor
from emokd.models.input_spec import given, resolve_audio_input, resolve_face_input
from emokd.models.presets import PRESETS, preset_for_file

log = logging.getLogger(__name__)


class ExternalEncoder(FrozenEncoder):
    """An encoder whose network is a user's file; `kind` ("face" | "audio") is chosen when built."""

    file_format = ""  # "onnx" | "torchscript"

    def __init__(self, path: str | Path, kind: str, layer: str | None, spec: dict, preset: str | None,
                 device: str | torch.device) -> None:
        super().__init__()
        if kind not in ("face", "audio"):
            raise WeightsError(f"{self.file_format} encoder: kind must be 'face' or 'audio', got {kind!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise WeightsError(f"{self.path}: {self.file_format} weights file not found")
        self.kind, self.preset = kind, PRESETS[preset] if preset else None
        self.name = preset or self.file_format
        self._device = torch.device(device)
        self.requested_layer = layer or (self.preset.layer if self.preset else None)
        self.where = f"{self.path} ({self.name} {kind} encoder)"
        if kind == "face":
            self.input_spec = resolve_face_input(given(spec), self.preset.face_input() if self.preset else None,
                                                 self.where)
        else:
            self.input_spec = resolve_audio_input(given(spec), self.where)
        self.pool = None  # "spatial mean" when the layer is a feature map

    @classmethod
    def from_weights(cls, weights=None, layer=None, device="cpu", kind=None, input_spec=None,
                     preset=None, window_s=None) -> ExternalEncoder:
        if weights is None:
            what = f"--{kind or 'face'}-weights FILE"
            hint = f" (one of {', '.join(PRESETS[preset].files)})" if preset else ""
            raise WeightsError(f"encoder '{preset or cls.file_format}' runs a file you bring: pass {what}{hint}; "
                               f"see docs/encoders.md")
        encoder = cls(weights, kind or "face", layer, input_spec or {}, preset, device)
        if encoder.kind == "audio":
            encoder.input_spec.update(sample_rate=SAMPLE_RATE, window_s=float(window_s or AUDIO_WINDOW_S))
        encoder.load()
        hint = preset_hint(encoder.path, encoder.name) if encoder.kind == "face" else None
        if hint:
            log.warning("%s", hint)
        encoder.check_input()
        encoder.mark_loaded(encoder.path)
        encoder.output_dim = encoder.probe_output_dim()
        return encoder

    # subclass interface
    def load(self) -> None:
        raise NotImplementedError

    def model_input_shape(self) -> list[int | None] | None:
        """The model's input shape (None for unknown dims), or None when the file does not say."""
        return None

    def input_name(self) -> str:
        return "input"

    def run(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return self._device

    def check_input(self) -> None:
        """Refuse a model whose input does not fit the spec; fill the face size from the model."""
        shape, tensor = self.model_input_shape(), f"input tensor '{self.input_name()}'"
        if self.kind == "audio":
            if shape is not None and len(shape) not in (2, 3):
                raise WeightsError(f"{self.where}: {tensor} has shape {shape}; an audio encoder takes "
                                   f"(B, n) or (B, 1, n) windows")
            if self.input_spec["layout"] is None:
                self.input_spec["layout"] = "B1N" if shape is not None and len(shape) == 3 else "BN"
            return
        layout = self.input_spec["layout"]
        if shape is not None:
            if len(shape) != 4:
                raise WeightsError(f"{self.where}: {tensor} has shape {shape}, not a batch of images "
                                   f"({layout})")
            channels, height, width = (shape[1], shape[2], shape[3]) if layout == "NCHW" else \
                (shape[3], shape[1], shape[2])
            if channels not in (None, 3):
                other = "NHWC" if layout == "NCHW" else "NCHW"
                raise WeightsError(f"{self.where}: {tensor} has shape {shape}: {channels} channels where "
                                   f"layout {layout} puts them; a face encoder takes 3 (RGB/BGR); if the "
                                   f"model is {other}, set face input layout={other}")
            if height is not None and width is not None and height != width:
                raise WeightsError(f"{self.where}: {tensor} has shape {shape}: {height}x{width} is not square; "
                                   f"emokd feeds square face crops")
            side = height if height is not None else width
            size = self.input_spec["size"]
            if size is not None and side is not None and side != size:
                raise WeightsError(f"{self.where}: {tensor} has shape {shape}: the model takes {side}x{side} "
                                   f"faces, the spec says size={size}")
            if size is None:
                self.input_spec["size"] = side
        if self.input_spec["size"] is None:
            raise WeightsError(f"{self.where}: {tensor} does not say its image size; set the face input "
                               f"size (--face-input size=N or face_input.size in the config)")

    def probe_output_dim(self) -> int:
        """Run one zero batch to learn the layer's width (and refuse what is not one vector per face)."""
        if self.kind == "face":
            size = self.input_spec["size"]
            dummy = self.prepare(np.zeros((1, size, size, 3), np.uint8))
        else:
            n = int(round(self.input_spec["window_s"] * self.input_spec["sample_rate"]))
            dummy = self.prepare(np.zeros((1, n), np.float32))
        try:
            out = self.run(dummy)
        except WeightsError:
            raise
        except Exception as exc:  # the runtime's own error: the file and its first line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WeightsError(f"{self.where}: running the model on a {list(dummy.shape)} input failed: {first}") \
                from exc
        if out.ndim < 2 or out.shape[0] != dummy.shape[0]:
            raise WeightsError(f"{self.where}: layer '{self.layer}' gives shape {list(out.shape)} for a batch of "
                               f"{dummy.shape[0]}: not one vector per input; choose another layer")
        if out.ndim > 2:
            self.pool = "spatial mean"
        return int(self._vector(out).shape[1])

    def _vector(self, out: torch.Tensor) -> torch.Tensor:
        if out.ndim <= 2:
            return out
        channel_last = self.kind == "face" and self.input_spec["layout"] == "NHWC" and out.ndim == 4
        return out.mean(dim=(1, 2)) if channel_last else out.flatten(2).mean(dim=2)

    def prepare(self, batch: np.ndarray) -> torch.Tensor:
        if self.kind == "audio":
            batch = np.asarray(batch, dtype=np.float32)
            if batch.ndim != 2:
                raise ValueError(f"{self.where}: expected audio windows (B, n), got shape {batch.shape}")
            x = torch.from_numpy(np.ascontiguousarray(batch)) * self.input_spec["scale"]
            return (x.unsqueeze(1) if self.input_spec["layout"] == "B1N" else x).to(self.device)
        return prepare_faces(faces_to_tensor(batch, self.name).to(self.device), self.input_spec)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._vector(self.run(x))

    def record(self) -> dict:
        out = super().record()
        out["format"] = self.file_format
        if self.pool:
            out["pool"] = self.pool
        return out


def prepare_faces(faces: torch.Tensor, spec: dict) -> torch.Tensor:
    """(B, 3, H, W) RGB float in [0, 255] -> the model's input: channel order, bilinear resize to
    spec['size'] (half-pixel centres; antialiased when shrinking), x * scale, (x - mean) / std, layout."""
    if spec["colour"] == "BGR":
        faces = faces.flip(1)
    size = spec["size"]
    if faces.shape[-1] != size or faces.shape[-2] != size:
        faces = F.interpolate(faces, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=size < faces.shape[-1])
    mean = torch.tensor(spec["mean"], dtype=faces.dtype, device=faces.device).view(1, 3, 1, 1)
    std = torch.tensor(spec["std"], dtype=faces.dtype, device=faces.device).view(1, 3, 1, 1)
    x = (faces * spec["scale"] - mean) / std
    return x.permute(0, 2, 3, 1).contiguous() if spec["layout"] == "NHWC" else x.contiguous()


def preset_hint(path: Path, name: str) -> str | None:
    """A hint when a known public file is run without (or with another) preset."""
    preset = preset_for_file(path.name)
    if preset is not None and preset.name != name:
        return (f"{path.name} is a published {preset.source} file: `--face-encoder {preset.name}` runs it with "
                f"its published preprocessing (size {preset.size}, mean {list(preset.mean)}, std {list(preset.std)})")
    return None
