"""A user's file vs emokd's own module: the same network as torch, ONNX (onnxruntime) and TorchScript.

The network is `fer_drer`'s ResNeXt-34 (112x112 RGB -> 512-d; randomly initialised: timing does not
depend on the values), exported in the run to ONNX (`torch.onnx.export`, dynamic batch) and to
TorchScript (`torch.jit.trace`), then run through `build_encoder("fer_drer" | "onnx" |
"torchscript")` on the same uint8 crops. Figures: faces/s of encode (prepared input, as extraction
runs it) and of prepare+encode, wall and per CPU-second (the one to read on a shared machine), the
ratio to the torch module, and the largest difference of the vectors (a check that the three run
the same network).

    python benchmarks/onnx_encoder.py                       # CPU, 1 thread, batch 32
    python benchmarks/onnx_encoder.py --device cuda --batch 256
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from emokd.models.encoder import build_encoder
from emokd.models.fer_drer import DrerEncoder


def rate(fn, items: int, min_time: float) -> tuple[float, float]:
    fn()
    runs, wall, cpu = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        runs += 1
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if time.perf_counter() - wall >= min_time or runs >= 50:
            return runs * items / (time.perf_counter() - wall), runs * items / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--min-time", type=float, default=3.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    crops = np.random.default_rng(0).integers(0, 256, (args.batch, 112, 112, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "drer.pt"
        module = DrerEncoder()
        torch.save(module.net.state_dict(), weights)
        torch_enc = build_encoder("fer_drer", weights=weights, device=args.device)
        example = torch_enc.prepare(crops[:2])
        net = torch_enc.net.eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (example,), str(Path(tmp) / "drer.onnx"), input_names=["input"],
                              output_names=["embedding"], dynamic_axes={"input": {0: "b"}}, dynamo=False)
            torch.jit.trace(net, example).save(str(Path(tmp) / "drer.ts"))
        spec = {"size": 112, "mean": [0.5] * 3, "std": [0.5] * 3}  # fer_drer's own (x/255 - 0.5) / 0.5
        encoders = {
            "fer_drer (torch module)": torch_enc,
            "onnx (onnxruntime)": build_encoder("onnx", weights=Path(tmp) / "drer.onnx", kind="face",
                                                input_spec=spec, device=args.device),
            "torchscript": build_encoder("torchscript", weights=Path(tmp) / "drer.ts", kind="face",
                                         input_spec=spec, device=args.device),
        }
        reference = torch_enc.encode_numpy(crops)
        print(f"batch {args.batch}, {args.threads} thread(s), device {args.device}; faces/s wall (per CPU-second)")
        print("| encoder | encode | prepare + encode | x torch (CPU-s, encode) | max abs diff vs torch |")
        print("|---|---|---|---|---|")
        base = None
        for name, enc in encoders.items():
            x = enc.prepare(crops)
            wall, cpu = rate(lambda enc=enc, x=x: enc.encode(x), args.batch, args.min_time)
            wall2, cpu2 = rate(lambda enc=enc: enc.encode_numpy(crops), args.batch, args.min_time)
            base = base or cpu
            diff = float(np.abs(enc.encode_numpy(crops) - reference).max())
            print(f"| {name} | {wall:.1f} ({cpu:.1f}) | {wall2:.1f} ({cpu2:.1f}) | {cpu / base:.2f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
