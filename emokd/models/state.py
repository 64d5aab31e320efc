"""Loading parameter files safely and checking them against a module, key by key.

Every loader ends in `load_checked`, so a wrong file is reported the same way everywhere:
the file, the first missing / unexpected / mis-shaped key, and how many more there are.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from emokd.errors import WeightsError


def torch_load_safely(path: str | Path) -> dict:
    """torch.load with weights_only=True (no arbitrary code from the pickle); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, OSError,
            AttributeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a readable PyTorch weights file (corrupt, truncated or not "
                           f"tensors only): {first}") from exc
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return obj


def unwrap_state_dict(obj: dict, path: str | Path, keys=("state_dict", "network", "model")) -> dict:
    """Checkpoints often nest the state dict under one of `keys`; return the tensor dict itself."""
    for key in keys:
        if key in obj and isinstance(obj[key], dict):
            return obj[key]
    return obj


def load_checked(module: torch.nn.Module, state: dict, source: str | Path,
                 ignore=("num_batches_tracked",)) -> None:
    """Copy `state` into `module` after checking every key and shape; refuse on the first mismatch."""
    expected = {k: v for k, v in module.state_dict().items() if not k.endswith(ignore)}
    given = {k: v for k, v in state.items() if not str(k).endswith(ignore)}
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    if missing:
        raise WeightsError(f"{source}: wrong architecture: missing key '{missing[0]}' "
                           f"({len(missing)} missing, {len(unexpected)} unexpected keys)")
    if unexpected:
        raise WeightsError(f"{source}: wrong architecture: unexpected key '{unexpected[0]}' "
                           f"({len(unexpected)} unexpected keys)")
    converted = {}
    for key, target in expected.items():
        value = given[key]
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value))
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{source}: key '{key}' holds {type(value).__name__}, not an array")
        if tuple(value.shape) != tuple(target.shape):
            raise WeightsError(f"{source}: wrong architecture: key '{key}' has shape {tuple(value.shape)}, "
                               f"expected {tuple(target.shape)}")
        if not torch.isfinite(value.float()).all():
            raise WeightsError(f"{source}: key '{key}' contains NaN or infinite values")
        converted[key] = value.to(target.dtype)
    module.load_state_dict(converted, strict=False)
