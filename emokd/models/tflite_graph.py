"""A float TFLite graph run in torch: the ops of the BlazeFace models, weights from the file.

`TfliteGraph(read_tflite(path))` converts every constant once (fp16 weights through their
DEQUANTIZE ops to float32; conv kernels OHWI -> OIHW, depthwise 1HWC -> C1HW) and runs the
operators in the file's order. Activations are kept NCHW (torch's layout); the NHWC semantics of
TFLite (concatenation axes, reshapes, paddings) are mapped where they matter. TFLite's SAME
padding puts the odd pixel after (bottom/right), as TensorFlow does. Any batch size runs.
An op outside this small set is refused when the graph is built, naming the file and the op.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emokd.errors import WeightsError
from emokd.models.tflite_file import TfliteModel

_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}
SUPPORTED = {"ADD", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE", "LOGISTIC", "MAX_POOL_2D",
             "RELU", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "PAD"}


def _activation(x: torch.Tensor, code: int) -> torch.Tensor:
    if code == 0:
        return x
    if code == 1:
        return F.relu(x)
    if code == 2:
        return x.clamp(-1.0, 1.0)
    if code == 3:
        return x.clamp(0.0, 6.0)
    if code == 4:
        return torch.tanh(x)
    raise WeightsError(f"TFLite fused activation {code} is not supported")


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) of one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class TfliteGraph(nn.Module):
    def __init__(self, model: TfliteModel) -> None:
        super().__init__()
        self.model = model
        self.shapes = [t.shape for t in model.tensors]
        constants: dict[int, np.ndarray] = {i: t.data for i, t in enumerate(model.tensors) if t.data is not None}
        self.steps = []
        for op in model.operators:
            if op.op not in SUPPORTED:
                raise WeightsError(f"{model.path}: operator {op.op} is not supported by emokd's TFLite runner "
                                   f"(it runs {sorted(SUPPORTED)})")
            if op.op == "DEQUANTIZE" and op.inputs[0] in constants:
                constants[op.outputs[0]] = constants[op.inputs[0]].astype(np.float32)
                continue
            self.steps.append(op)
        self._weights = {}
        for k, op in enumerate(self.steps):
            if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                kernel = constants[op.inputs[1]].astype(np.float32)
                kernel = kernel.transpose(0, 3, 1, 2) if op.op == "CONV_2D" else kernel.transpose(3, 0, 1, 2)
                weight = torch.from_numpy(np.ascontiguousarray(kernel)).contiguous(memory_format=torch.channels_last)
                self.register_buffer(f"w{k}", weight)
                if len(op.inputs) > 2 and op.inputs[2] >= 0:
                    self.register_buffer(f"b{k}", torch.from_numpy(constants[op.inputs[2]].astype(np.float32)))
        self.constants = {i: v for i, v in constants.items()}
        self.input_index, self.output_indices = model.inputs[0], list(model.outputs)

    def _conv(self, k: int, op, x: torch.Tensor) -> torch.Tensor:
        o = op.options
        weight = getattr(self, f"w{k}")
        bias = getattr(self, f"b{k}", None)
        kh, kw = weight.shape[2:]
        if o["padding"] == 0:  # SAME
            top, bottom = same_padding(x.shape[2], kh, o["stride_h"], o["dilation_h"])
            left, right = same_padding(x.shape[3], kw, o["stride_w"], o["dilation_w"])
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        groups = x.shape[1] if op.op == "DEPTHWISE_CONV_2D" else 1
        y = F.conv2d(x, weight, bias, (o["stride_h"], o["stride_w"]), 0, (o["dilation_h"], o["dilation_w"]), groups)
        return _activation(y, o["activation"])

    def _pool(self, op, x: torch.Tensor) -> torch.Tensor:
        o = op.options
        if o["padding"] == 0:
            top, bottom = same_padding(x.shape[2], o["filter_h"], o["stride_h"])
            left, right = same_padding(x.shape[3], o["filter_w"], o["stride_w"])
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom), value=-math.inf)
        y = F.max_pool2d(x, (o["filter_h"], o["filter_w"]), (o["stride_h"], o["stride_w"]))
        return _activation(y, o["activation"])

    def _resize(self, op, x: torch.Tensor) -> torch.Tensor:
        height, width = (int(v) for v in self.constants[op.inputs[1]])
        o = op.options
        if o["align_corners"]:
            return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=True)
        if o["half_pixel_centers"]:
            return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        # TensorFlow's legacy rule: source = destination * in / out, no half-pixel shift
        ys = torch.arange(height, device=x.device, dtype=x.dtype) * (x.shape[2] / height)
        xs = torch.arange(width, device=x.device, dtype=x.dtype) * (x.shape[3] / width)
        y0, x0 = ys.floor().long(), xs.floor().long()
        y1, x1 = (y0 + 1).clamp(max=x.shape[2] - 1), (x0 + 1).clamp(max=x.shape[3] - 1)
        fy, fx = (ys - y0).view(1, 1, -1, 1), (xs - x0).view(1, 1, 1, -1)
        top = x[:, :, y0][..., x0] * (1 - fx) + x[:, :, y0][..., x1] * fx
        bottom = x[:, :, y1][..., x0] * (1 - fx) + x[:, :, y1][..., x1] * fx
        return top * (1 - fy) + bottom * fy

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (B, 3, H, W) float, already normalised as the model expects -> the graph's outputs
        (in TFLite's layout: a 4-D output is returned NHWC)."""
        # channels-last activations: torch's CPU depthwise/pointwise convolutions run ~1.5x faster so
        values: dict[int, torch.Tensor] = {self.input_index: x.contiguous(memory_format=torch.channels_last)}

        def get(index: int) -> torch.Tensor:
            if index in values:
                return values[index]
            return torch.as_tensor(self.constants[index], device=x.device)

        for k, op in enumerate(self.steps):
            a = get(op.inputs[0])
            name = op.op
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                y = self._conv(k, op, a)
            elif name == "ADD":
                y = _activation(a + get(op.inputs[1]), op.options["activation"])
            elif name == "RELU":
                y = F.relu(a)
            elif name == "RELU6":
                y = a.clamp(0.0, 6.0)
            elif name == "LOGISTIC":
                y = torch.sigmoid(a)
            elif name == "MAX_POOL_2D":
                y = self._pool(op, a)
            elif name == "PAD":
                pads = np.asarray(self.constants[op.inputs[1]]).reshape(-1, 2)
                if a.ndim != 4 or pads[0].any():
                    raise WeightsError(f"{self.model.path}: PAD of a {a.ndim}-D tensor or of the batch axis")
                (top, bottom), (left, right), (front, back) = pads[1], pads[2], pads[3]
                y = F.pad(a, (int(left), int(right), int(top), int(bottom), int(front), int(back)))
            elif name == "RESHAPE":
                if a.ndim == 4:
                    a = a.permute(0, 2, 3, 1)
                y = a.reshape(a.shape[0], *self.shapes[op.outputs[0]][1:])
            elif name == "CONCATENATION":
                parts = [get(i) for i in op.inputs]
                axis = op.options["axis"] % parts[0].ndim
                if parts[0].ndim == 4:
                    axis = _NHWC_TO_NCHW_AXIS[axis]
                y = _activation(torch.cat(parts, dim=axis), op.options["activation"])
            elif name == "RESIZE_BILINEAR":
                y = self._resize(op, a)
            elif name == "DEQUANTIZE":
                y = a.float()
            else:  # pragma: no cover - refused in __init__
                raise WeightsError(f"{self.model.path}: operator {name} is not supported")
            values[op.outputs[0]] = y
        outs = [values[i] for i in self.output_indices]
        return [o.permute(0, 2, 3, 1) if o.ndim == 4 else o for o in outs]
