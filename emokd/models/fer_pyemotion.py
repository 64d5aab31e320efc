"""Encoder `fer_pyemotion`, the default face encoder: PyEmotion 1.0.0's 7-class expression CNN,
in our own module (weights asset `fer_pyemotion`; docs/encoders.md).

The checkpoint `main_model.pkl` (a torch pickle holding {'network': state dict, 'optimizer', ...})
is read with torch.load(weights_only=True): tensors only, PyEmotion is never imported.
Architecture (PyEmotion NetworkV2, in_c=1, nl=32, out_f=7): four blocks of reflection pad 1 ->
3x3 conv (strides 1, 2, 2, 2) -> BatchNorm -> ReLU with 32, 64, 128, 256 channels on a 48x48 grey
face, flatten 256x6x6 -> Linear 256 -> ReLU -> Linear 7 -> sigmoid. The embedding is the
256-d ReLU output of the first Linear (the penultimate layer). Classes in the checkpoint's
order: Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral (FER-2013 order).
Preprocessing as PyEmotion: grey = ITU-R 601 luma, resize to 48x48, (x/255 - 0.5) / 0.5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emokd.errors import WeightsError
from emokd.models.encoder import FrozenEncoder, faces_to_tensor
from emokd.models.state import load_checked, torch_load_safely, unwrap_state_dict
from emokd.models.weights import asset_path

CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
INPUT_SIZE = 48
LAYERS = ("embedding", "logits")


class ExpressionCNN(nn.Module):
    """Same parameter names as the checkpoint: conv_i.1 (conv), conv_i.2 (BN), linear.0, linear.2."""

    def __init__(self, in_channels: int = 1, width: int = 32, n_classes: int = 7) -> None:
        super().__init__()
        chans = [in_channels, width, 2 * width, 4 * width, 8 * width]
        for i in range(4):
            block = nn.Sequential(nn.ReflectionPad2d(1),
                                  nn.Conv2d(chans[i], chans[i + 1], 3, stride=1 if i == 0 else 2),
                                  nn.BatchNorm2d(chans[i + 1]), nn.ReLU())
            setattr(self, f"conv_{i + 1}", block)
        self.linear = nn.Sequential(nn.Linear(8 * width * 6 * 6, 256), nn.ReLU(), nn.Linear(256, n_classes))

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, 5):
            x = getattr(self, f"conv_{i}")(x)
        return self.linear[1](self.linear[0](x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores before PyEmotion's final sigmoid (sigmoid is monotonic: same ranking)."""
        return self.linear[2](self.embedding(x))


def grey_48(faces: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float RGB in [0, 255] -> (B, 1, 48, 48) normalised to [-1, 1]."""
    r, g, b = faces[:, 0:1], faces[:, 1:2], faces[:, 2:3]
    grey = 0.299 * r + 0.587 * g + 0.114 * b
    if grey.shape[-1] != INPUT_SIZE:
        grey = F.interpolate(grey, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                             antialias=True)
    return (grey / 255.0 - 0.5) / 0.5


class FerPyEmotionEncoder(FrozenEncoder):
    name = "fer_pyemotion"
    kind = "face"

    def __init__(self, layer: str = "embedding") -> None:
        super().__init__()
        if layer not in LAYERS:
            raise WeightsError(f"{self.name}: unknown layer '{layer}'; choose one of {list(LAYERS)}")
        self.layer = layer
        self.output_dim = 256 if layer == "embedding" else len(CLASSES)
        self.input_spec = {"size": INPUT_SIZE, "channels": 1}
        self.net = ExpressionCNN()

    @classmethod
    def from_weights(cls, weights=None, layer=None, device="cpu") -> "FerPyEmotionEncoder":
        path = Path(weights) if weights is not None else asset_path("fer_pyemotion")
        encoder = cls(layer or "embedding")
        load_checked(encoder.net, unwrap_state_dict(torch_load_safely(path), path), path)
        encoder.mark_loaded(path)
        return encoder.to(device)

    def prepare(self, batch: np.ndarray) -> torch.Tensor:
        return grey_48(faces_to_tensor(batch, self.name).to(self.device))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embedding(x) if self.layer == "embedding" else self.net(x)
