"""The `onnx` encoder against onnxruntime run directly: small real networks exported in the test,
preprocessing checked by hand, an intermediate layer checked against the torch module's own
activation, and files that do not fit refused with the file and the tensor named."""

import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from emokd.errors import ConfigError, WeightsError
from emokd.models.encoder import build_encoder
from emokd.models.presets import IMAGENET_MEAN, IMAGENET_STD

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


class SmallFaceNet(nn.Module):
    """conv -> BN -> ReLU -> conv -> ReLU -> global mean -> Linear: a tiny expression-CNN shape."""

    def __init__(self, channels_last: bool = False, classes: int = 5) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.channels_last = channels_last
        self.conv1, self.bn = nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8)
        self.conv2, self.act = nn.Conv2d(8, 12, 3, 1, 1), nn.ReLU()
        self.fc = nn.Linear(12, classes)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.2, 0.2)
            self.bn.running_var.uniform_(0.5, 1.5)
        self.eval()

    def pooled(self, x):
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        return self.act(self.conv2(torch.relu(self.bn(self.conv1(x))))).mean(dim=(2, 3))

    def forward(self, x):
        return self.fc(self.pooled(x))


def export(net, path, shape, dynamic_batch=True):
    torch.onnx.export(net, (torch.rand(*shape),), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None,
                      dynamo=False)
    return path


def faces(n=4, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def ort_run(path, x, output=None):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([output] if output else None, {"input": x})[0]


def bilinear_reference(image: np.ndarray, size: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize of (H, W, C) float, edges clamped (cv2 INTER_LINEAR's rule)."""
    h, w = image.shape[:2]

    def axis(n_in):
        src = (np.arange(size) + 0.5) * n_in / size - 0.5
        src = np.clip(src, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo)[:, None]

    ylo, yhi, fy = axis(h)
    xlo, xhi, fx = axis(w)
    rows = image[ylo] * (1 - fy[..., None]) + image[yhi] * fy[..., None]
    return rows[:, xlo] * (1 - fx) + rows[:, xhi] * fx


def test_default_spec_first_output_equals_onnxruntime_and_torch(tmp_path):
    net = SmallFaceNet()
    path = export(net, tmp_path / "net.onnx", (2, 3, 32, 32))
    enc = build_encoder("onnx", weights=path, kind="face")
    batch = faces()
    x = enc.prepare(batch).numpy()
    # the default spec by hand: RGB, /255, mean 0, std 1, NCHW, size from the model (32: no resize)
    np.testing.assert_allclose(x, batch.transpose(0, 3, 1, 2).astype(np.float32) / 255.0, rtol=0, atol=1e-7)
    got = enc.encode_numpy(batch)
    np.testing.assert_allclose(got, ort_run(path, x), rtol=0, atol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(got, net(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)
    record = enc.record()
    assert record == {"name": "onnx", "kind": "face", "output_dim": 5, "layer": "logits", "format": "onnx",
                      "input_spec": {"size": 32, "colour": "RGB", "scale": 1 / 255, "mean": [0.0, 0.0, 0.0],
                                     "std": [1.0, 1.0, 1.0], "layout": "NCHW"},
                      "weights_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def test_intermediate_layers_by_name_and_penultimate(tmp_path):
    import onnx

    net = SmallFaceNet()
    path = export(net, tmp_path / "net.onnx", (2, 3, 32, 32))
    graph = onnx.load(str(path)).graph
    relu2 = [n.output[0] for n in graph.node if n.op_type == "Relu"][-1]  # the conv2 feature map
    batch = faces(3, 112, seed=1)
    spec = {"size": 32, "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}

    pen = build_encoder("onnx", weights=path, kind="face", layer="penultimate", input_spec=spec)
    x = pen.prepare(batch)
    pooled_torch = net.pooled(x).detach().numpy()
    direct = ort_run(path, x.numpy())  # the classifier output from onnxruntime directly
    assert pen.record()["layer"] != "logits" and pen.output_dim == 12
    got = pen.encode_numpy(batch)
    np.testing.assert_allclose(got, pooled_torch, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got @ net.fc.weight.detach().numpy().T + net.fc.bias.detach().numpy(), direct,
                               rtol=1e-4, atol=1e-5)

    from click.testing import CliRunner

    from emokd.cli import main

    listed = CliRunner().invoke(main, ["weights", "layers", str(path), "--all"])
    assert listed.exit_code == 0 and f"{relu2}  Relu  [None, 12, 16, 16]" in listed.output
    assert f"{pen.record()['layer']}  ReduceMean  [None, 12]" in listed.output

    fmap = build_encoder("onnx", weights=path, kind="face", layer=relu2, input_spec=spec)
    seen = {}
    net.act.register_forward_hook(lambda m, i, o: seen.update(out=o.detach()))
    net(x)
    assert fmap.record()["layer"] == relu2 and fmap.record()["pool"] == "spatial mean"
    np.testing.assert_allclose(fmap.encode_numpy(batch), seen["out"].mean(dim=(2, 3)).numpy(), rtol=1e-4, atol=1e-5)


def test_preset_is_the_published_preprocessing(tmp_path, caplog):
    net = SmallFaceNet(classes=8)
    path = export(net, tmp_path / "enet_b0_8_best_vgaf.onnx", (1, 3, 224, 224))
    build_encoder("onnx", weights=path, kind="face")  # a published file run without its preset: a hint
    assert "`--face-encoder hsemotion_enet_b0` runs it with its published preprocessing" in caplog.text
    enc = build_encoder("hsemotion_enet_b0", weights=path, kind="face")
    spec = enc.record()["input_spec"]
    assert spec == {"size": 224, "colour": "RGB", "scale": 1 / 255, "mean": list(IMAGENET_MEAN),
                    "std": list(IMAGENET_STD), "layout": "NCHW"}
    assert enc.record()["name"] == "hsemotion_enet_b0" and enc.output_dim == 12  # penultimate by default
    batch = faces(2, 112, seed=2)
    # HSEmotion's own rule by hand: resize to 224 (bilinear), /255, (x - mean) / std, NCHW
    want = np.stack([(bilinear_reference(f.astype(np.float64), 224) / 255 - IMAGENET_MEAN) / IMAGENET_STD
                     for f in batch]).transpose(0, 3, 1, 2)
    x = enc.prepare(batch).numpy()
    np.testing.assert_allclose(x, want, rtol=0, atol=2e-5)
    np.testing.assert_allclose(enc.encode_numpy(batch), net.pooled(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_bgr_nhwc_and_a_fixed_batch_of_one(tmp_path):
    net = SmallFaceNet(channels_last=True)
    path = export(net, tmp_path / "nhwc.onnx", (1, 40, 40, 3), dynamic_batch=False)
    with pytest.raises(WeightsError, match=r"nhwc.onnx \(onnx face encoder\): input tensor 'input' has shape "
                                           r"\[1, 40, 40, 3\]: 40 channels where layout NCHW.*layout=NHWC"):
        build_encoder("onnx", weights=path, kind="face")
    enc = build_encoder("onnx", weights=path, kind="face",
                        input_spec={"layout": "NHWC", "colour": "BGR", "scale": 1.0, "mean": [100, 110, 120]})
    batch = faces(3, 40, seed=4)
    x = enc.prepare(batch).numpy()
    np.testing.assert_allclose(x, batch[..., ::-1].astype(np.float32) - np.array([100, 110, 120], np.float32),
                               rtol=0, atol=1e-5)
    want = np.concatenate([ort_run(path, x[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(enc.encode_numpy(batch), want, rtol=0, atol=1e-6)


def test_audio_onnx_encoder_on_windows(tmp_path):
    torch.manual_seed(5)
    net = nn.Sequential(nn.Conv1d(1, 6, 64, 16), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten()).eval()
    path = tmp_path / "audio.onnx"
    torch.onnx.export(net, (torch.rand(2, 1, 22050),), str(path), input_names=["input"], output_names=["emb"],
                      dynamic_axes={"input": {0: "batch", 2: "samples"}}, dynamo=False)
    enc = build_encoder("onnx", weights=path, kind="audio", window_s=1.0, input_spec={"scale": 256.0})
    assert enc.record()["input_spec"] == {"scale": 256.0, "layout": "B1N", "sample_rate": 22050, "window_s": 1.0}
    windows = np.random.default_rng(6).uniform(-1, 1, (3, 22050)).astype(np.float32)
    want = ort_run(path, windows[:, None] * 256.0)
    np.testing.assert_allclose(enc.encode_numpy(windows), want, rtol=0, atol=1e-5)


def test_files_that_do_not_fit_are_refused_naming_file_and_tensor(tmp_path):
    path = export(SmallFaceNet(), tmp_path / "net64.onnx", (1, 3, 64, 64), dynamic_batch=False)
    with pytest.raises(WeightsError, match=r"net64.onnx \(onnx face encoder\): input tensor 'input' has shape "
                                           r"\[1, 3, 64, 64\]: the model takes 64x64 faces, the spec says size=48"):
        build_encoder("onnx", weights=path, kind="face", input_spec={"size": 48})
    with pytest.raises(WeightsError, match=r"net64.onnx \(onnx face encoder\): the graph has no tensor named "
                                           r"'pool5'.*emokd weights layers FILE"):
        build_encoder("onnx", weights=path, kind="face", layer="pool5")
    with pytest.raises(WeightsError, match=r"enet_b0_8_best_vgaf.onnx \(hsemotion_enet_b0 face encoder\): input "
                                           r"tensor 'input' has shape \[1, 3, 64, 64\]: the model takes 64x64 faces, "
                                           r"the spec says size=224"):
        build_encoder("hsemotion_enet_b0", kind="face",
                      weights=export(SmallFaceNet(), tmp_path / "enet_b0_8_best_vgaf.onnx", (1, 3, 64, 64), False))
    grey = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten()).eval()
    torch.onnx.export(grey, (torch.rand(1, 1, 16, 16),), str(tmp_path / "grey.onnx"), input_names=["image"],
                      dynamo=False)
    with pytest.raises(WeightsError, match=r"grey.onnx \(onnx face encoder\): input tensor 'image' has shape "
                                           r"\[1, 1, 16, 16\]: 1 channels"):
        build_encoder("onnx", weights=tmp_path / "grey.onnx", kind="face")
    (tmp_path / "junk.onnx").write_bytes(b"not a graph at all")
    with pytest.raises(WeightsError, match=r"junk.onnx: not a readable ONNX file"):
        build_encoder("onnx", weights=tmp_path / "junk.onnx", kind="face")
    with pytest.raises(ConfigError, match=r"colour 'YUV' is not one of"):
        build_encoder("onnx", weights=path, kind="face", input_spec={"colour": "YUV"})
    with pytest.raises(WeightsError, match="'hsemotion_enet_b0' is a face model preset"):
        build_encoder("hsemotion_enet_b0", weights=path, kind="audio")
