"""Face encoders: fer_pyemotion with PyEmotion's real checkpoint, fer_drer with user-style weight files."""

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from emokd.errors import WeightsError
from emokd.models.encoder import build_encoder
from emokd.models.face_align import align_face
from emokd.models.face_detector import build_face_detector
from emokd.models.fer_pyemotion import CLASSES, grey_48
from emokd.models.fer_drer import DrerEncoder
from emokd.models.weights import asset_path, fetch


@pytest.fixture(scope="module")
def fer():
    return build_encoder("fer_pyemotion")


def test_smiling_astronaut_is_happy(fer):
    """The real checkpoint on a real smiling face (detected and aligned by our MTCNN)."""
    image = np.asarray(Image.open(fetch("photo_astronaut")["photo_astronaut"]).convert("RGB"))
    face = align_face(image, build_face_detector().detect(image).landmarks[0], 112)
    logits = build_encoder("fer_pyemotion", layer="logits").encode_numpy(face[None])[0]
    assert CLASSES[int(np.argmax(logits))] == "Happy"
    embedding = fer.encode_numpy(face[None])
    assert embedding.shape == (1, 256) and embedding.dtype == np.float32
    assert (embedding >= 0).all() and (embedding > 0).sum() > 10      # ReLU output of linear.0
    # the logits are the last Linear applied to exactly this embedding
    head = fer.net.linear[2]
    np.testing.assert_allclose(logits, embedding[0] @ head.weight.numpy().T + head.bias.numpy(), rtol=1e-5, atol=1e-4)
    assert fer.record() == {"name": "fer_pyemotion", "kind": "face", "output_dim": 256, "layer": "embedding",
                            "input_spec": {"size": 48, "channels": 1},
                            "weights_sha256": "d2789940007ee6175130fefd3ed9a523a1afa4475fbdafbf64f2948db6c29537"}


def test_grey_preprocessing_values():
    red = torch.zeros(1, 3, 48, 48)
    red[:, 0] = 255.0
    # 0.299 * 255 = 76.245 -> 76.245 / 255 * 2 - 1 = -0.402
    assert torch.allclose(grey_48(red), torch.full((1, 1, 48, 48), -0.402), atol=1e-6)
    big = torch.full((2, 3, 112, 112), 255.0)
    assert grey_48(big).shape == (2, 1, 48, 48) and torch.allclose(grey_48(big), torch.ones(1))


def test_faces_must_be_uint8_rgb_squares(fer):
    with pytest.raises(ValueError, match=r"expected uint8 RGB faces \(B, H, W, 3\) with H = W"):
        fer.prepare(np.zeros((2, 112, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="expected uint8 faces, got float32"):
        fer.prepare(np.zeros((2, 112, 112, 3), np.float32))


def test_pyemotion_checkpoint_errors_name_file_and_key(tmp_path, monkeypatch):
    original = asset_path("fer_pyemotion")
    (tmp_path / "cut.pkl").write_bytes(original.read_bytes()[:100_000])
    with pytest.raises(WeightsError, match=r"cut.pkl: not a readable PyTorch weights file"):
        build_encoder("fer_pyemotion", weights=tmp_path / "cut.pkl")
    state = torch.load(original, weights_only=True, map_location="cpu")["network"]
    del state["linear.2.bias"]
    torch.save({"network": state}, tmp_path / "partial.pkl")
    with pytest.raises(WeightsError, match=r"partial.pkl: wrong architecture: missing key 'linear.2.bias'"):
        build_encoder("fer_pyemotion", weights=tmp_path / "partial.pkl")
    monkeypatch.setenv("EMOKD_HOME", str(tmp_path / "empty"))
    with pytest.raises(WeightsError, match="emokd weights fetch fer_pyemotion"):
        build_encoder("fer_pyemotion")


@pytest.fixture(scope="module")
def drer_state():
    torch.manual_seed(0)
    net = DrerEncoder().net
    for module in net.modules():        # non-trivial BN statistics so that misplacing them shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_drer_refuses_without_weights():
    with pytest.raises(WeightsError, match="no public weights exist"):
        build_encoder("fer_drer")
    with pytest.raises(WeightsError, match="refusing to run with random weights"):
        DrerEncoder().encode(torch.zeros(1, 3, 112, 112))


def test_drer_torch_state_dict(drer_state, tmp_path):
    torch.save({"state_dict": drer_state}, tmp_path / "drer.pth")
    encoder = build_encoder("fer_drer", weights=tmp_path / "drer.pth")
    faces = np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    out = encoder.encode_numpy(faces)
    assert out.shape == (3, 512) and np.isfinite(out).all() and (out >= 0).all()
    assert encoder.record()["output_dim"] == 512
    shapes = {k: tuple(v.shape) for k, v in drer_state.items()}
    assert shapes["layer1.0.conv1.weight"] == (64, 2, 3, 3)          # cardinality 32: 64 / 32 channels a group
    assert shapes["layer4.2.conv2.weight"] == (512, 16, 3, 3)
    assert shapes["layer2.0.se_fc1.weight"] == (8, 64)               # SE from the block input (64 ch)
    assert sum(k.endswith("conv2.weight") for k in drer_state) == 3 + 4 + 6 + 3
    bad = dict(drer_state)
    bad["layer3.1.bn2.running_var"] = torch.ones(128)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match=r"bad.pth: wrong architecture: key 'layer3.1.bn2.running_var' has shape \(128,\)"):
        build_encoder("fer_drer", weights=tmp_path / "bad.pth")


def write_keras_drer(state, path, skip=None):
    """Keras 2 layout: one group per layer, `<layer>/<layer>/kernel:0` etc., TF kernel layouts."""
    layers = {}
    for key, value in state.items():
        module, param = key.rsplit(".", 1)
        layers.setdefault(module.replace(".", "_"), {})[param] = value.numpy()
    with h5py.File(path, "w") as f:
        for name, params in layers.items():
            if name == skip:
                continue
            g = f.create_group(name).create_group(name)
            if "running_mean" in params:
                for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                                     ("running_var", "moving_variance")):
                    g[f"{theirs}:0"] = params[ours]
            elif params["weight"].ndim == 4:
                g["kernel:0"] = params["weight"].transpose(2, 3, 1, 0)   # (kh, kw, in/groups, out)
            else:
                g["kernel:0"] = params["weight"].T                       # Dense (in, out)
                g["bias:0"] = params["bias"]
        f.attrs["layer_names"] = np.array([n.encode() for n in layers if n != skip])


def test_drer_keras_hdf5(drer_state, tmp_path):
    write_keras_drer(drer_state, tmp_path / "drer.h5")
    encoder = build_encoder("fer_drer", weights=tmp_path / "drer.h5")
    for key, value in drer_state.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(encoder.net.state_dict()[key], value), key
    write_keras_drer(drer_state, tmp_path / "short.h5", skip="layer2_1_se_fc2")
    with pytest.raises(WeightsError, match=r"short.h5: wrong architecture: missing layer 'layer2_1_se_fc2'"):
        build_encoder("fer_drer", weights=tmp_path / "short.h5")
    (tmp_path / "cut.h5").write_bytes((tmp_path / "drer.h5").read_bytes()[:5000])
    with pytest.raises(WeightsError, match=r"cut.h5: not a readable HDF5 file"):
        build_encoder("fer_drer", weights=tmp_path / "cut.h5")
