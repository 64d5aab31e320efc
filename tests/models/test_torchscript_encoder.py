"""The `torchscript` encoder: a scripted and a traced network saved in the test, run through emokd
and compared with the eager module on the same prepared inputs, layers by method and submodule."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from emokd.errors import WeightsError
from emokd.models.encoder import build_encoder


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 6, 3, 2, 1), nn.BatchNorm2d(6)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(7)
        self.backbone, self.head = Backbone(), nn.Linear(6, 3)
        with torch.no_grad():
            self.backbone.bn.running_var.uniform_(0.5, 2.0)
        self.eval()

    def forward(self, x):
        return self.head(self.backbone(x))

    @torch.jit.export
    def features(self, x):
        return self.backbone(x)


def save(module, path, traced=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.trace(module, torch.rand(1, 3, 24, 24)) if traced else torch.jit.script(module)
        scripted.save(str(path))
    return path


def test_forward_method_and_submodule_equal_the_eager_module(tmp_path):
    net = Net()
    path = save(net, tmp_path / "net.pt")
    spec = {"size": 24, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    batch = np.random.default_rng(0).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    outputs = {}
    for layer in (None, "features", "backbone"):
        enc = build_encoder("torchscript", weights=path, kind="face", layer=layer, input_spec=spec)
        x = enc.prepare(batch)
        assert x.shape == (5, 3, 24, 24)
        outputs[layer] = (enc.record(), enc.encode_numpy(batch), x)
    record, logits, x = outputs[None]
    assert record["layer"] == "forward" and record["output_dim"] == 3 and record["format"] == "torchscript"
    with torch.no_grad():
        np.testing.assert_allclose(logits, net(x).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(outputs["features"][1], net.backbone(x).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(outputs["backbone"][1], net.backbone(x).numpy(), rtol=1e-5, atol=1e-6)
    assert outputs["features"][0]["output_dim"] == 6
    # (x - 0.5) / 0.5 of x/255: the prepared input lies in [-1, 1]
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0


def test_traced_module_and_the_refusals(tmp_path):
    net = Net()
    path = save(net, tmp_path / "traced.pt", traced=True)
    enc = build_encoder("torchscript", weights=path, kind="face", input_spec={"size": 24})
    batch = np.random.default_rng(1).integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    with torch.no_grad():
        np.testing.assert_allclose(enc.encode_numpy(batch), net(enc.prepare(batch)).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(WeightsError, match=r"traced.pt \(torchscript face encoder\): input tensor 'input' does not "
                                           r"say its image size; set the face input size"):
        build_encoder("torchscript", weights=path, kind="face")
    with pytest.raises(WeightsError, match=r"traced.pt \(torchscript face encoder\): no method or submodule "
                                           r"'neck'.*submodules: \['backbone', 'head'\]"):
        build_encoder("torchscript", weights=path, kind="face", layer="neck", input_spec={"size": 24})
    bad = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 22 * 22, 2)).eval()  # 24x24 only
    with pytest.raises(WeightsError, match=r"fixed.pt \(torchscript face encoder\): running the model on a "
                                           r"\[1, 3, 32, 32\] input failed"):
        build_encoder("torchscript", weights=save(bad, tmp_path / "fixed.pt", traced=True), kind="face",
                      input_spec={"size": 32})
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(WeightsError, match=r"junk.pt: not a readable TorchScript file"):
        build_encoder("torchscript", weights=tmp_path / "junk.pt", kind="face", input_spec={"size": 24})
