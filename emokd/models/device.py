"""Torch devices by name: auto (cuda when available, else cpu), cpu, cuda, cuda:N."""

from __future__ import annotations

import torch

from emokd.config import check_device_name
from emokd.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda when available, else cpu; an unavailable cuda (or cuda:N) is a ConfigError."""
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {name!r} requested but CUDA is not available here (use auto or cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device: {name!r} requested but this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
    return device
