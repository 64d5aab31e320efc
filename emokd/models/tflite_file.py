"""A small reader of TensorFlow Lite model files (a FlatBuffer), numpy only, no TensorFlow.

It reads what running a float model needs: the tensors (name, shape, type, constant data), the
operators (builtin code, inputs, outputs, options) and the graph's inputs and outputs of the first
subgraph. FlatBuffer layout: a table starts with an int32 offset back to its vtable (uint16 sizes,
then one uint16 offset per field, 0 = absent); references are uint32 offsets forward from where
they are stored; a vector is a uint32 length then its items. Field numbers follow TFLite's
schema.fbs (Model, SubGraph, Tensor, Buffer, Operator, OperatorCode and the options tables used).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emokd.errors import WeightsError

# TensorType -> numpy dtype (the types a float model and its fp16 weights use)
TENSOR_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
# BuiltinOperator codes of the ops emokd runs (schema.fbs)
BUILTIN_NAMES = {0: "ADD", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE",
                 14: "LOGISTIC", 17: "MAX_POOL_2D", 19: "RELU", 21: "RELU6", 22: "RESHAPE",
                 23: "RESIZE_BILINEAR", 34: "PAD", 1: "AVERAGE_POOL_2D", 54: "PRELU"}
# option table fields by op: (name, struct format, default) in field order
_OPTIONS = {
    "CONV_2D": (("padding", "b", 0), ("stride_w", "i", 1), ("stride_h", "i", 1), ("activation", "b", 0),
                ("dilation_w", "i", 1), ("dilation_h", "i", 1)),
    "DEPTHWISE_CONV_2D": (("padding", "b", 0), ("stride_w", "i", 1), ("stride_h", "i", 1),
                          ("depth_multiplier", "i", 1), ("activation", "b", 0), ("dilation_w", "i", 1),
                          ("dilation_h", "i", 1)),
    "MAX_POOL_2D": (("padding", "b", 0), ("stride_w", "i", 1), ("stride_h", "i", 1), ("filter_w", "i", 1),
                    ("filter_h", "i", 1), ("activation", "b", 0)),
    "ADD": (("activation", "b", 0),),
    "CONCATENATION": (("axis", "i", 0), ("activation", "b", 0)),
    "RESIZE_BILINEAR": (("new_height", "i", 0), ("new_width", "i", 0), ("align_corners", "?", False),
                        ("half_pixel_centers", "?", False)),
}
_OPTIONS["AVERAGE_POOL_2D"] = _OPTIONS["MAX_POOL_2D"]


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: type
    data: np.ndarray | None  # constant data (weights), None for activations


@dataclass
class Operator:
    op: str                  # BUILTIN_NAMES value, or "BUILTIN_<code>" when emokd does not know it
    inputs: list[int]        # tensor indices, -1 = optional input absent
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class TfliteModel:
    path: Path
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path = data, path

    def _unpack(self, fmt: str, pos: int):
        try:
            return struct.unpack_from("<" + fmt, self.data, pos)[0]
        except struct.error:
            raise WeightsError(f"{self.path}: truncated or not a TFLite file (offset {pos} out of range)") from None

    def field_pos(self, table: int, index: int) -> int | None:
        vtable = table - self._unpack("i", table)
        size = self._unpack("H", vtable)
        if 4 + 2 * index >= size:
            return None
        offset = self._unpack("H", vtable + 4 + 2 * index)
        return table + offset if offset else None

    def scalar(self, table: int, index: int, fmt: str, default=0):
        pos = self.field_pos(table, index)
        return default if pos is None else self._unpack(fmt, pos)

    def ref(self, table: int, index: int) -> int | None:
        pos = self.field_pos(table, index)
        return None if pos is None else pos + self._unpack("I", pos)

    def tables(self, table: int, index: int) -> list[int]:
        vec = self.ref(table, index)
        if vec is None:
            return []
        return [vec + 4 + 4 * k + self._unpack("I", vec + 4 + 4 * k) for k in range(self._unpack("I", vec))]

    def ints(self, table: int, index: int) -> list[int]:
        vec = self.ref(table, index)
        if vec is None:
            return []
        n = self._unpack("I", vec)
        return list(struct.unpack_from(f"<{n}i", self.data, vec + 4))

    def bytes_(self, table: int, index: int) -> bytes:
        vec = self.ref(table, index)
        if vec is None:
            return b""
        n = self._unpack("I", vec)
        if vec + 4 + n > len(self.data):
            raise WeightsError(f"{self.path}: truncated TFLite file (a buffer runs past its end)")
        return self.data[vec + 4:vec + 4 + n]

    def string(self, table: int, index: int) -> str:
        return self.bytes_(table, index).decode("utf-8", "replace")


def read_tflite(path: str | Path) -> TfliteModel:
    """The first subgraph of a .tflite file: tensors with their constant data, operators, inputs, outputs."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: TFLite model file not found")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise WeightsError(f"{path}: not a TFLite model file (no TFL3 identifier)")
    r = _Reader(data, path)
    root = r._unpack("I", 0)
    codes = []
    for table in r.tables(root, 1):
        code = max(r.scalar(table, 0, "b", 0), r.scalar(table, 3, "i", 0))  # deprecated_builtin_code, builtin_code
        codes.append(BUILTIN_NAMES.get(code, f"BUILTIN_{code}"))
    buffers = [r.bytes_(table, 0) for table in r.tables(root, 4)]
    subgraphs = r.tables(root, 2)
    if not subgraphs:
        raise WeightsError(f"{path}: the TFLite model has no subgraph")
    graph = subgraphs[0]
    tensors = []
    for table in r.tables(graph, 0):
        shape = tuple(r.ints(table, 0))
        type_code = r.scalar(table, 1, "b", 0)
        if type_code not in TENSOR_TYPES:
            raise WeightsError(f"{path}: tensor '{r.string(table, 3)}' has TFLite type {type_code}, which emokd "
                               f"does not run (float models only)")
        dtype = TENSOR_TYPES[type_code]
        raw = buffers[r.scalar(table, 2, "I", 0)] if buffers else b""
        array = np.frombuffer(raw, dtype=dtype).reshape(shape).copy() if raw else None
        tensors.append(Tensor(r.string(table, 3), shape, dtype, array))
    operators = []
    for table in r.tables(graph, 3):
        op = codes[r.scalar(table, 0, "I", 0)]
        options = {}
        opt_table = r.ref(table, 4)
        if opt_table is not None and op in _OPTIONS:
            options = {name: r.scalar(opt_table, k, fmt, default) for k, (name, fmt, default) in enumerate(_OPTIONS[op])}
        elif op in _OPTIONS:
            options = {name: default for name, _fmt, default in _OPTIONS[op]}
        operators.append(Operator(op, r.ints(table, 1), r.ints(table, 2), options))
    return TfliteModel(path, tensors, operators, r.ints(graph, 1), r.ints(graph, 2))
