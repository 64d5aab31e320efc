"""The paper's FER backbone (from DRER): ResNeXt-34-style with parallel squeeze-excitation, 512-d.

No public weights exist: this encoder runs only with a user's file (torch state dict with our
parameter names, or a Keras HDF5 file whose layer names are our module paths with '.' -> '_',
e.g. `layer2_0_conv1`, `layer2_0_se_fc1`; docs/encoders.md).

Layout: stem 7x7/2 conv (64) -> BN -> ReLU -> 3x3/2 max-pool; stages of [3, 4, 6, 3] blocks
with 64, 128, 256, 512 channels (the ResNet-34 plan), stride 2 at the first block of stages
2-4. A block is the ResNeXt basic block: two 3x3 grouped convolutions (cardinality 32) with
BN, ReLU between. The squeeze-excitation branch runs in parallel: its channel gates come from
the block's input (global pool -> FC c/16 -> ReLU -> FC -> sigmoid), not from the residual
output as in sequential SE, and scale the residual before it is added to the shortcut:
out = ReLU(shortcut(x) + residual(x) * gates(x)). Global average pool -> 512-d embedding.
Input: 112x112 RGB, (x / 255 - 0.5) / 0.5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emokd.errors import WeightsError
from emokd.models import keras_h5
from emokd.models.encoder import FrozenEncoder, faces_to_tensor
from emokd.models.state import load_checked, torch_load_safely, unwrap_state_dict

CARDINALITY = 32
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # channels, blocks, first stride
SE_REDUCTION = 16
INPUT_SIZE = 112


class ParallelSEBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, groups=CARDINALITY, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, groups=CARDINALITY, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.se_fc1 = nn.Linear(cin, cout // SE_REDUCTION)
        self.se_fc2 = nn.Linear(cout // SE_REDUCTION, cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        gates = torch.sigmoid(self.se_fc2(F.relu(self.se_fc1(x.mean(dim=(2, 3))))))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return F.relu(shortcut + residual * gates[:, :, None, None])


class DrerBackbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem_conv = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.stem_bn = nn.BatchNorm2d(64)
        cin = 64
        for index, (cout, blocks, stride) in enumerate(STAGES, start=1):
            layers = [ParallelSEBlock(cin if b == 0 else cout, cout, stride if b == 0 else 1) for b in range(blocks)]
            setattr(self, f"layer{index}", nn.Sequential(*layers))
            cin = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem_bn(self.stem_conv(x))), 3, 2, 1)
        for index in range(1, len(STAGES) + 1):
            x = getattr(self, f"layer{index}")(x)
        return x.mean(dim=(2, 3))


def state_from_keras(net: nn.Module, path: Path) -> dict[str, np.ndarray]:
    """Keras layer `<module path with '_'>` -> our parameters (conv, dense and BN layers)."""
    layers = keras_h5.read_keras_h5(path)
    state: dict[str, np.ndarray] = {}
    for name, module in net.named_modules():
        keras_name = name.replace(".", "_")
        if isinstance(module, nn.Conv2d):
            (kernel,) = keras_h5.layer_weights(layers, keras_name, ("kernel",), path)
            state[f"{name}.weight"] = keras_h5.conv_kernel_to_torch(kernel)
        elif isinstance(module, nn.Linear):
            kernel, bias = keras_h5.layer_weights(layers, keras_name, ("kernel", "bias"), path)
            state[f"{name}.weight"] = keras_h5.dense_kernel_to_torch(kernel)
            state[f"{name}.bias"] = bias
        elif isinstance(module, nn.BatchNorm2d):
            state.update(keras_h5.bn_to_torch(name, *keras_h5.layer_weights(layers, keras_name, keras_h5.BN_ORDER,
                                                                             path)))
    return state


class DrerEncoder(FrozenEncoder):
    name = "fer_drer"
    kind = "face"
    output_dim = 512
    layer = "gap"

    def __init__(self) -> None:
        super().__init__()
        self.input_spec = {"size": INPUT_SIZE, "channels": 3}
        self.net = DrerBackbone()

    @classmethod
    def from_weights(cls, weights=None, layer=None, device="cpu") -> "DrerEncoder":
        if weights is None:
            raise WeightsError("fer_drer: no public weights exist for the DRER backbone; pass your own file "
                               "(torch state dict or Keras HDF5) as weights, or use the encoder 'fer_pyemotion'")
        if layer not in (None, "gap"):
            raise WeightsError(f"fer_drer: unknown layer '{layer}'; the only embedding is 'gap' (512-d)")
        path = Path(weights)
        encoder = cls()
        if path.suffix in (".h5", ".hdf5", ".keras"):
            state = state_from_keras(encoder.net, path)
        else:
            state = unwrap_state_dict(torch_load_safely(path), path)
        load_checked(encoder.net, state, path)
        encoder.mark_loaded(path)
        return encoder.to(device)

    def prepare(self, batch: np.ndarray) -> torch.Tensor:
        faces = faces_to_tensor(batch, self.name).to(self.device)
        if faces.shape[-1] != INPUT_SIZE:
            faces = F.interpolate(faces, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                                  antialias=True)
        return (faces / 255.0 - 0.5) / 0.5

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
