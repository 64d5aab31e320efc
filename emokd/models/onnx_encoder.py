"""Encoder `onnx`: any ONNX file by path, run with onnxruntime (docs/encoders.md, "Bring your own").

The layer is any tensor of the graph: the graph's first output by default, a tensor name
(`--face-layer NAME`, exposed as an extra graph output with the `onnx` package), or `penultimate`:
the input of the classifier (the last Gemm/MatMul before the first output). CPU by default; the
CUDA provider when the device is a GPU and the installed onnxruntime has it (onnxruntime-gpu).
"""

from __future__ import annotations

import difflib
import logging

import numpy as np
import torch

from emokd.errors import WeightsError
from emokd.models.external import ExternalEncoder

log = logging.getLogger(__name__)

PENULTIMATE = "penultimate"
# ops a classifier's output may pass through on its way to the graph output
_PASS_THROUGH = {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Softmax", "Sigmoid", "Dropout",
                 "Cast", "LogSoftmax"}
_FLOAT_TYPES = {1: np.float32, 10: np.float16, 11: np.float64}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def penultimate_tensor(graph, where: str) -> str:
    """The data input of the last Gemm/MatMul on the path to the graph's first output."""
    producers = {out: node for node in graph.node for out in node.output}
    name = graph.output[0].name
    while name in producers:
        node = producers[name]
        if node.op_type in ("Gemm", "MatMul"):
            return node.input[0]
        if node.op_type not in _PASS_THROUGH or not node.input:
            break
        name = node.input[0]
    raise WeightsError(f"{where}: layer '{PENULTIMATE}': no Gemm/MatMul classifier found before output "
                       f"'{graph.output[0].name}' (the path ends at a {producers[name].op_type if name in producers else 'graph input'} "
                       f"node); name the tensor with --face-layer NAME")


def expose_tensor(model, name: str, where: str):
    """The model with tensor `name` as a graph output (a copy; unchanged when it is one already)."""
    import onnx

    graph = model.graph
    if name in {o.name for o in graph.output}:
        return model
    produced = {out for node in graph.node for out in node.output}
    if name not in produced:
        close = difflib.get_close_matches(name, sorted(produced), n=5, cutoff=0.4)
        hint = f"; close names: {close}" if close else f"; its outputs: {[o.name for o in graph.output]}"
        raise WeightsError(f"{where}: the graph has no tensor named '{name}'{hint} (list them with "
                           f"`emokd weights layers FILE`)")
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(exposed)
        info = next((v for v in inferred.graph.value_info if v.name == name), None)
    except Exception:  # shape inference is a convenience: fall back to an untyped output
        info = None
    if info is None:
        info = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
    exposed.graph.output.append(info)
    return exposed


def graph_tensors(path) -> list[tuple[str, str, list]]:
    """(tensor name, producing op, shape with None for unknown dims) of every node output of an ONNX
    file, in graph order: the names `--face-layer` takes (`emokd weights layers FILE`)."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable ONNX file: {_first_line(exc)}") from exc
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # shapes are a convenience
        inferred = model.graph
    shapes = {}
    for info in [*inferred.value_info, *inferred.output]:
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    return [(out, node.op_type, shapes.get(out)) for node in model.graph.node for out in node.output]


class OnnxEncoder(ExternalEncoder):
    file_format = "onnx"

    def load(self) -> None:
        import onnx
        import onnxruntime as ort

        try:
            model = onnx.load(str(self.path))
        except Exception as exc:
            raise WeightsError(f"{self.path}: not a readable ONNX file: {_first_line(exc)}") from exc
        graph = model.graph
        initialisers = {t.name for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in initialisers]
        if len(inputs) != 1:
            raise WeightsError(f"{self.where}: the graph has {len(inputs)} inputs "
                               f"{[i.name for i in inputs]}; an encoder takes one (the face or the audio)")
        self._input = inputs[0]
        dtype = self._input.type.tensor_type.elem_type
        if dtype not in _FLOAT_TYPES:
            raise WeightsError(f"{self.where}: input tensor '{self._input.name}' has element type {dtype}; "
                               f"emokd feeds float tensors")
        self._input_dtype = _FLOAT_TYPES[dtype]
        requested = self.requested_layer
        self.layer = penultimate_tensor(graph, self.where) if requested == PENULTIMATE else \
            (requested or graph.output[0].name)
        model = expose_tensor(model, self.layer, self.where)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(torch.get_num_threads(), 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if self._device.type == "cuda":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                index = self._device.index or 0
                providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
            else:
                log.warning("%s: onnxruntime has no CUDA provider here (install onnxruntime-gpu); running on "
                            "the CPU", self.where)
        try:
            self._session = ort.InferenceSession(model.SerializeToString(), options, providers=providers)
        except Exception as exc:
            raise WeightsError(f"{self.where}: onnxruntime cannot load the graph: {_first_line(exc)}") from exc
        self.providers = self._session.get_providers()

    def model_input_shape(self) -> list[int | None]:
        dims = self._input.type.tensor_type.shape.dim
        return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]

    def input_name(self) -> str:
        return self._input.name

    def run(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().cpu().numpy().astype(self._input_dtype, copy=False)
        shape = self.model_input_shape()
        fixed_batch = shape[0] if shape else None
        if fixed_batch is not None and fixed_batch != len(array):
            if fixed_batch != 1:
                raise WeightsError(f"{self.where}: input tensor '{self._input.name}' has a fixed batch of "
                                   f"{fixed_batch}; export the model with batch 1 or a dynamic batch")
            outs = [self._session.run([self.layer], {self._input.name: array[i:i + 1]})[0]
                    for i in range(len(array))]
            out = np.concatenate(outs) if outs else np.zeros((0,), np.float32)
        else:
            out = self._session.run([self.layer], {self._input.name: array})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))
