"""Encoder `torchscript`: any TorchScript file by path (`torch.jit.save` of a scripted or traced model).

A TorchScript file carries no input shape, so the face input size comes from the spec or a preset.
The layer: `forward` by default (its output, or its first output when it returns a tuple or list),
or NAME = an exported method of the module (e.g. `features`, `forward_features`) or a submodule
path (`backbone`, `model.features`) called on the prepared input.
"""

from __future__ import annotations

import warnings

import torch

from emokd.errors import WeightsError
from emokd.models.external import ExternalEncoder


class TorchScriptEncoder(ExternalEncoder):
    file_format = "torchscript"

    def load(self) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load still loads
                module = torch.jit.load(str(self.path), map_location=self._device)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WeightsError(f"{self.path}: not a readable TorchScript file (torch.jit.save): {first}") from exc
        module.eval()
        self.module = module
        self.layer = self.requested_layer or "forward"
        self._call = self._resolve(module, self.layer)

    def _resolve(self, module, layer: str):
        if layer == "forward":
            return module
        target = module
        for part in layer.split("."):
            if not hasattr(target, part):
                methods = sorted(module._c._method_names()) if hasattr(module, "_c") else []
                children = [name for name, _ in module.named_children()]
                raise WeightsError(f"{self.where}: no method or submodule '{layer}' (at '{part}'); methods: "
                                   f"{methods}, submodules: {children}")
            target = getattr(target, part)
        if not callable(target):
            raise WeightsError(f"{self.where}: '{layer}' is not a method or a submodule")
        return target

    def run(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            out = self._call(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise WeightsError(f"{self.where}: layer '{self.layer}' returns {type(out).__name__}, not a tensor")
        return out.float()
