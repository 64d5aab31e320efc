"""`emokd extract-features --face-encoder onnx / --audio-encoder onnx` end to end: the cache holds
the ONNX model's features of the very crops, and records the file's sha256, the spec and the layer."""

import hashlib

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from emokd.cli import main
from extract_support import onnx_face_model

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow


def _audio_model(path):
    torch.manual_seed(12)
    net = nn.Sequential(nn.Conv1d(1, 5, 256, 128), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten()).eval()
    torch.onnx.export(net, (torch.rand(1, 1, 22050),), str(path), input_names=["input"], output_names=["emb"],
                      dynamic_axes={"input": {0: "b", 2: "n"}}, dynamo=False)
    return net


def test_onnx_face_and_audio_encoders_fill_the_cache(tmp_path):
    from emokd.cache import FeatureCache
    from emokd.extract.faces import load_crop
    from emokd.testing.affwild2_tree import TreeVideo, write_affwild2_tree

    tree = write_affwild2_tree(tmp_path / "data", [TreeVideo("solo", 20, 30, crop_gaps=(4,), size=(96, 96))])
    face_net = onnx_face_model(tmp_path / "face.onnx")
    _audio_model(tmp_path / "audio.onnx")
    url = tmp_path / "cache.zarr"
    result = CliRunner().invoke(main, [
        "extract-features", str(tree.root), "--cache", str(url), "--workers", "1", "--no-progress",
        "--face-encoder", "onnx", "--face-weights", str(tmp_path / "face.onnx"), "--face-layer", "penultimate",
        "--face-input", "size=32", "--face-input", "mean=0.5,0.5,0.5", "--face-input", "std=0.25,0.25,0.25",
        "--audio-encoder", "onnx", "--audio-weights", str(tmp_path / "audio.onnx"), "--audio-input", "scale=256",
        "--window-s", "2"])
    assert result.exit_code == 0, result.output
    cache = FeatureCache.open(url)
    face, audio = (next(r for r in cache.encoders if r["kind"] == k) for k in ("face", "audio"))
    assert face["weights_sha256"] == hashlib.sha256((tmp_path / "face.onnx").read_bytes()).hexdigest()
    assert face["layer"] != "logits" and face["output_dim"] == 8 and face["format"] == "onnx"
    assert face["input_spec"] == {"size": 32, "colour": "RGB", "scale": 1 / 255, "mean": [0.5] * 3,
                                  "std": [0.25] * 3, "layout": "NCHW"}
    assert audio["input_spec"]["window_s"] == 2.0 and audio["output_dim"] == 5 and audio["layer"] == "emb"
    assert cache.settings["audio_mode"] == "per-window"

    arrays = cache.read_video("solo")
    crop_dir = tree.root / "cropped_aligned" / "solo"
    crops = [load_crop(crop_dir, k, 112) for k in range(20)]
    assert [c is None for c in crops] == [k == 4 for k in range(20)]
    assert list(arrays["face_ok"]) == [c is not None for c in crops]
    ok = [k for k in range(20) if crops[k] is not None]
    # the features of the crops by hand: resize to 32, /255, (x - 0.5) / 0.25, the net up to its Linear
    x = torch.from_numpy(np.stack([crops[k] for k in ok])).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        want = face_net[:4]((x / 255 - 0.5) / 0.25).numpy()
    np.testing.assert_allclose(arrays["face"][ok].astype(np.float32), want, rtol=2e-3, atol=2e-3)
    assert not arrays["face"][4].any()
    assert np.isfinite(arrays["audio"].astype(np.float32)).all() and arrays["audio"][arrays["audio_ok"]].any()
