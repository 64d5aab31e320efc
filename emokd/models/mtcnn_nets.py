"""The three MTCNN networks (Zhang et al. 2016) with the parameter names of facenet-pytorch's
pnet.pt / rnet.pt / onet.pt (converted from the original Caffe model).

The Caffe model was trained on transposed images, which the conversion keeps in one place: the
dense layers of R-Net and O-Net read their input flattened in (W, H, C) order, hence the
permute before flattening.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv_prelu(net: nn.Module, index: int, cin: int, cout: int, k: int) -> None:
    setattr(net, f"conv{index}", nn.Conv2d(cin, cout, k))
    setattr(net, f"prelu{index}", nn.PReLU(cout))


def _flatten_caffe(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """Fully convolutional 12x12 proposal net: face probability and box offsets, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        _conv_prelu(self, 1, 3, 10, 3)
        _conv_prelu(self, 2, 10, 16, 3)
        _conv_prelu(self, 3, 16, 32, 3)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return F.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """24x24 refine net: probability and box offsets per candidate."""

    def __init__(self) -> None:
        super().__init__()
        _conv_prelu(self, 1, 3, 28, 3)
        _conv_prelu(self, 2, 28, 48, 3)
        _conv_prelu(self, 3, 48, 64, 2)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_flatten_caffe(self.prelu3(self.conv3(x)))))
        return F.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """48x48 output net: probability, box offsets and 5 landmarks (x1..x5, y1..y5) per candidate."""

    def __init__(self) -> None:
        super().__init__()
        _conv_prelu(self, 1, 3, 32, 3)
        _conv_prelu(self, 2, 32, 64, 3)
        _conv_prelu(self, 3, 64, 64, 3)
        _conv_prelu(self, 4, 64, 128, 2)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_flatten_caffe(self.prelu4(self.conv4(x)))))
        return F.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)
