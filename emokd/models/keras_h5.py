"""Reading Keras-saved HDF5 weights with h5py (no TensorFlow), and converting them to torch layouts.

Keras writes one group per layer (`model.save_weights` at the top level, `model.save` under
`model_weights/`), the layer's weights below it, e.g. `conv1/conv1/kernel:0`, `bn1/bn1/gamma:0`;
Keras 3 `.weights.h5` files use `layers/<name>/vars/0..n` instead (order: kernel, bias for
convolutions and dense layers; gamma, beta, moving_mean, moving_variance for BatchNormalization).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emokd.errors import WeightsError

BN_ORDER = ("gamma", "beta", "moving_mean", "moving_variance")


def read_keras_h5(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """layer name -> {weight name without ':0' (kernel, bias, gamma, ...) or var index -> array}."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: Keras weights file not found")
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layers" in root and "layer_names" not in root.attrs:
                return _read_keras3(root["layers"])
            return _read_keras2(root)
    except OSError as exc:
        raise WeightsError(f"{path}: not a readable HDF5 file (corrupt or truncated): {exc}") from exc


def _read_keras2(root) -> dict[str, dict[str, np.ndarray]]:
    names = root.attrs.get("layer_names")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names] if names is not None else list(root)
    layers: dict[str, dict[str, np.ndarray]] = {}
    for name in names:
        if name not in root:
            continue
        weights: dict[str, np.ndarray] = {}

        def visit(key, obj, weights=weights):
            if hasattr(obj, "shape"):
                leaf = key.rsplit("/", 1)[-1].split(":", 1)[0]
                weights[leaf] = np.asarray(obj[()])
        root[name].visititems(visit)
        if weights:
            layers[name] = weights
    return layers


def _read_keras3(layers_group) -> dict[str, dict[str, np.ndarray]]:
    layers: dict[str, dict[str, np.ndarray]] = {}
    for name in layers_group:
        vars_group = layers_group[name].get("vars")
        if vars_group is None or not len(vars_group):
            continue
        values = [np.asarray(vars_group[str(i)][()]) for i in range(len(vars_group))]
        if len(values) == 4 and all(v.ndim == 1 for v in values):
            layers[name] = dict(zip(BN_ORDER, values))
        else:
            layers[name] = dict(zip(("kernel", "bias"), values))
    return layers


def layer_weights(layers: dict, name: str, keys: tuple[str, ...], source: str | Path) -> list[np.ndarray]:
    """The named weights of one layer, or WeightsError naming the file and the first missing key."""
    if name not in layers:
        raise WeightsError(f"{source}: wrong architecture: missing layer '{name}' "
                           f"(file has {sorted(layers)[:8]}{'...' if len(layers) > 8 else ''})")
    found = layers[name]
    for key in keys:
        if key not in found:
            raise WeightsError(f"{source}: wrong architecture: missing key '{name}/{key}' "
                               f"(layer has {sorted(found)})")
    return [found[k] for k in keys]


def conv_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Keras (k, in, out) Conv1D or (kh, kw, in/groups, out) Conv2D -> torch (out, in, k...)."""
    if kernel.ndim == 3:
        return np.ascontiguousarray(kernel.transpose(2, 1, 0))
    if kernel.ndim == 4:
        return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
    raise ValueError(f"convolution kernel of rank {kernel.ndim}")


def dense_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Keras Dense (in, out) -> torch Linear (out, in)."""
    return np.ascontiguousarray(kernel.T)


def bn_to_torch(prefix: str, gamma, beta, mean, var) -> dict[str, np.ndarray]:
    return {f"{prefix}.weight": gamma, f"{prefix}.bias": beta,
            f"{prefix}.running_mean": mean, f"{prefix}.running_var": var}
