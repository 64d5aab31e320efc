"""SoundNet-8 with the real sound8.npy: lengths, every parameter in its place, loaders, track modes."""

import h5py
import numpy as np
import pytest
import torch

from emokd.errors import WeightsError
from emokd.models import soundnet_track
from emokd.models.audio_windows import audio_windows
from emokd.models.encoder import build_encoder
from emokd.models.soundnet import CONV_LAYERS, SoundNet8Encoder, layer_steps
from emokd.models.weights import asset_path

SR = 22050


@pytest.fixture(scope="module")
def npy_path():
    return asset_path("soundnet8")  # `make test` fetches it first; a missing asset fails loudly


@pytest.fixture(scope="module")
def raw(npy_path):
    """The file's arrays read with plain numpy (independent of our restricted unpickler)."""
    return np.load(npy_path, allow_pickle=True, encoding="latin1").item()


@pytest.fixture(scope="module")
def encoder(npy_path):
    return build_encoder("soundnet8")


@pytest.fixture(scope="module")
def ten_seconds():
    t = np.arange(10 * SR) / SR
    rng = np.random.default_rng(0)
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
            + 0.05 * rng.standard_normal(t.size)).astype(np.float32)[None]


def conv_bn_relu_pool_numpy(x, layer, stride, pad, pool, with_bn=True):
    """Direct numpy convolution with the file's arrays: x (C_in, N) -> (C_out, L)."""
    w = layer["weights"][:, 0]                                    # (k, in, out)
    k = w.shape[0]
    xp = np.pad(x.astype(np.float64), ((0, 0), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, k, axis=1)[:, ::stride]   # (in, L, k)
    y = np.einsum("clk,kco->ol", windows, w.astype(np.float64)) + layer["biases"][:, None]
    if not with_bn:
        return y
    y = (y - layer["mean"][:, None]) / np.sqrt(layer["var"][:, None] + 1e-5) * layer["gamma"][:, None] \
        + layer["beta"][:, None]
    y = np.maximum(y, 0)
    if pool > 1:
        n = y.shape[1] // pool
        y = y[:, :n * pool].reshape(y.shape[0], n, pool).max(axis=2)
    return y


def test_ten_seconds_give_eight_conv7_steps_and_one_conv8_step(encoder, ten_seconds):
    outs = encoder.layer_outputs(encoder.prepare(ten_seconds))
    lengths = {name: out.shape[2] for name, out in outs.items()}
    assert lengths == {"conv1": 13781, "conv2": 861, "conv3": 431, "conv4": 216, "conv5": 27,
                       "conv6": 14, "conv7": 8, "conv8": 1, "conv8_2": 1}
    assert layer_steps(10 * SR) == lengths
    assert outs["conv8"].shape[1] == 1000 and outs["conv8_2"].shape[1] == 401
    vec = encoder.encode_numpy(ten_seconds)
    assert vec.shape == (1, 1000) and vec.dtype == np.float32
    np.testing.assert_allclose(vec[0], outs["conv8"][0, :, 0].numpy(), rtol=1e-6)


def test_every_layer_matches_a_direct_numpy_convolution_with_the_files_arrays(encoder, raw, ten_seconds):
    x = encoder.prepare(ten_seconds)
    outs = encoder.layer_outputs(x)
    previous = x[0].numpy()
    for name, _c, _k, stride, pad, pool in CONV_LAYERS:
        expected = conv_bn_relu_pool_numpy(previous, raw[name], stride, pad, pool)
        got = outs[name][0].numpy()
        scale = np.abs(expected).max()
        assert np.abs(got - expected).max() <= 1e-4 * scale, name
        previous = got
    for head in ("conv8", "conv8_2"):
        expected = conv_bn_relu_pool_numpy(previous, raw[head], 2, 0, 1, with_bn=False)
        np.testing.assert_allclose(outs[head][0].numpy(), expected, rtol=1e-4, atol=1e-3 * np.abs(expected).max())


def test_layer_choice_sets_output_dim(npy_path, ten_seconds):
    enc7 = build_encoder("soundnet8", layer="conv7")
    assert enc7.output_dim == 1024 and enc7.encode_numpy(ten_seconds).shape == (1, 1024)
    assert build_encoder("soundnet8", weights=npy_path, layer="conv8_2").output_dim == 401
    with pytest.raises(WeightsError, match="unknown layer 'pool5'"):
        build_encoder("soundnet8", layer="pool5")


def test_missing_weights_refuse_to_run(tmp_path, monkeypatch, ten_seconds):
    monkeypatch.setenv("EMOKD_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="emokd weights fetch soundnet8"):
        build_encoder("soundnet8")
    never_loaded = SoundNet8Encoder()
    with pytest.raises(WeightsError, match="refusing to run with random weights"):
        never_loaded.encode(never_loaded.prepare(ten_seconds))
    with pytest.raises(WeightsError):
        never_loaded.record()


def test_truncated_npy_names_the_file(npy_path, tmp_path):
    bad = tmp_path / "sound8.npy"
    bad.write_bytes(npy_path.read_bytes()[: 1 << 20])
    with pytest.raises(WeightsError, match=f"{bad}: not a readable sound8.npy"):
        build_encoder("soundnet8", weights=bad)


def _save_npy(layers, path):
    np.save(path, np.array(layers, dtype=object), allow_pickle=True)


def test_wrong_architecture_names_the_first_mismatched_key(raw, tmp_path):
    no_gamma = {k: dict(v) for k, v in raw.items()}
    del no_gamma["conv3"]["gamma"]
    _save_npy(no_gamma, tmp_path / "a.npy")
    with pytest.raises(WeightsError, match=r"a.npy: wrong architecture: missing key 'conv3/gamma'"):
        build_encoder("soundnet8", weights=tmp_path / "a.npy")
    wrong_shape = {k: dict(v) for k, v in raw.items()}
    wrong_shape["conv5"]["weights"] = np.zeros((3, 1, 128, 256), np.float32)
    _save_npy(wrong_shape, tmp_path / "b.npy")
    with pytest.raises(WeightsError, match=r"b.npy: wrong architecture: key 'conv5/weights' has shape \(3, 1, 128, 256\)"):
        build_encoder("soundnet8", weights=tmp_path / "b.npy")


def test_npy_with_foreign_objects_is_refused_not_executed(tmp_path):
    _save_npy({"conv1": {"weights": np.zeros(2)}, "hook": pytest.raises}, tmp_path / "evil.npy")
    with pytest.raises(WeightsError, match="refusing to unpickle"):
        build_encoder("soundnet8", weights=tmp_path / "evil.npy")


def test_torch_state_dict_missing_key_is_named(encoder, tmp_path):
    state = dict(encoder.net.state_dict())
    torch.save(state, tmp_path / "ok.pt")
    assert build_encoder("soundnet8", weights=tmp_path / "ok.pt").weights_sha256 != encoder.weights_sha256
    del state["bn4.running_var"]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match=r"bad.pt: wrong architecture: missing key 'bn4.running_var'"):
        build_encoder("soundnet8", weights=tmp_path / "bad.pt")


def write_keras_soundnet(raw, path):
    """The layout Keras 2 `save_weights` writes: layer_names attr, group/group/kernel:0 ..."""
    with h5py.File(path, "w") as f:
        names = []
        for i, (name, *_rest) in enumerate(CONV_LAYERS, start=1):
            g = f.create_group(name).create_group(name)
            g["kernel:0"] = raw[name]["weights"][:, 0]           # Conv1D (k, in, out)
            g["bias:0"] = raw[name]["biases"]
            b = f.create_group(f"bn{i}").create_group(f"bn{i}")
            for ours, theirs in (("gamma", "gamma"), ("beta", "beta"), ("moving_mean", "mean"),
                                 ("moving_variance", "var")):
                b[f"{ours}:0"] = raw[name][theirs]
            names += [name, f"bn{i}"]
        for head in ("conv8", "conv8_2"):
            g = f.create_group(head).create_group(head)
            g["kernel:0"] = raw[head]["weights"]                 # Conv2D-style (k, 1, in, out)
            g["bias:0"] = raw[head]["biases"]
            names.append(head)
        f.attrs["layer_names"] = np.array([n.encode() for n in names])


def test_keras_hdf5_loader_gives_the_same_network(raw, encoder, tmp_path, ten_seconds):
    write_keras_soundnet(raw, tmp_path / "soundnet.h5")
    from_keras = build_encoder("soundnet8", weights=tmp_path / "soundnet.h5")
    for key, value in encoder.net.state_dict().items():
        assert torch.equal(from_keras.net.state_dict()[key], value), key
    with h5py.File(tmp_path / "soundnet.h5", "a") as f:
        del f["bn6/bn6/moving_variance:0"]
    with pytest.raises(WeightsError, match=r"soundnet.h5: wrong architecture: missing key 'bn6/moving_variance'"):
        build_encoder("soundnet8", weights=tmp_path / "soundnet.h5")


def test_shared_trunk_slices_line_up_with_a_windows_own_trunk(encoder):
    rng = np.random.default_rng(3)
    signal = rng.uniform(-0.5, 0.5, 60_000).astype(np.float32)
    window = 30_000
    steps = soundnet_track.trunk_steps(window)
    start_step = 57                                  # window [57*256, 57*256 + window)
    with torch.inference_mode():
        own = encoder.net.trunk(encoder.prepare(signal[None, start_step * 256:start_step * 256 + window]))[0]
        whole = soundnet_track.trunk_over_span(encoder.net, signal, -10, 300, "cpu", chunk_steps=10_000)
        chunked = soundnet_track.trunk_over_span(encoder.net, signal, -10, 300, "cpu", chunk_steps=37)
    assert own.shape[1] == steps == 117           # 30000 -> conv1 15001 -> 1875 -> conv2 938 -> 117
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-4)
    sliced = whole[:, start_step + 10:start_step + 10 + steps]
    # interior steps are identical; only the first and last two see the neighbours instead of zeros
    torch.testing.assert_close(sliced[:, 2:-2], own[:, 2:-2], rtol=1e-5, atol=1e-4)


def test_track_modes_agree_and_cover_early_frames(encoder):
    rng = np.random.default_rng(4)
    t = np.arange(4 * SR) / SR
    signal = (0.4 * np.sin(2 * np.pi * (150 + 40 * t) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    ends = np.array([1, 300, 22050, 250_000, 14 * SR + 1000], dtype=np.int64)  # start, inside, past the end
    window = 10 * SR
    exact = encoder.encode_track(signal, ends, window, "per-window")
    shared = encoder.encode_track(signal, ends, window, "shared-trunk")
    assert exact.shape == shared.shape == (5, 1000)
    zero_padded = np.pad(signal[:22050], (9 * 22050, 0))[None]     # frame ending at 1 s: 9 s of zeros first
    np.testing.assert_allclose(exact[2], encoder.encode_numpy(zero_padded)[0], rtol=1e-5, atol=1e-3)
    # per-window is the encoder on the one cutter's windows, batch for batch (4 a batch by default)
    np.testing.assert_array_equal(exact[:4], encoder.encode_numpy(audio_windows(signal, ends[:4], window)))
    np.testing.assert_array_equal(encoder.encode_track(signal, ends, window, "per-window", batch_size=2)[2:4],
                                  encoder.encode_numpy(audio_windows(signal, ends[2:4], window)))
    cosine = (exact * shared).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(shared, axis=1)
    assert cosine.min() > 0.999, cosine
    relative = np.linalg.norm(exact - shared, axis=1) / np.linalg.norm(exact, axis=1)
    assert relative.max() < 0.06, relative        # the <= 128-sample window move (docs/encoders.md)
    assert not np.allclose(exact, shared, rtol=1e-6)   # the modes really are different computations
    for mode in ("per-window", "shared-trunk"):
        assert encoder.encode_track(signal, np.zeros(0, np.int64), window, mode).shape == (0, 1000)
    with pytest.raises(ValueError, match="audio mode 'exact' is not one of"):
        encoder.encode_track(signal, ends, window, "exact")


def test_too_short_windows_are_an_error_not_an_empty_vector(encoder):
    assert layer_steps(209_000)["conv8"] == 0 and layer_steps(210_000)["conv8"] == 1   # ~9.5 s minimum
    with pytest.raises(ValueError, match="too short for layer conv8"):
        encoder.encode_numpy(np.zeros((1, 5 * SR), np.float32))
    for mode in ("per-window", "shared-trunk"):
        with pytest.raises(ValueError, match="a window of 110250 samples is too short for layer conv8"):
            encoder.encode_track(np.zeros(SR, np.float32), np.array([SR]), 5 * SR, mode)


def test_keras3_weights_h5_layout(raw, encoder, tmp_path):
    """Keras 3 `.weights.h5`: layers/<name>/vars/0..n (kernel, bias / gamma, beta, mean, variance)."""
    with h5py.File(tmp_path / "soundnet.weights.h5", "w") as f:
        layers = f.create_group("layers")
        for i, (name, *_rest) in enumerate(CONV_LAYERS, start=1):
            conv = layers.create_group(name).create_group("vars")
            conv["0"], conv["1"] = raw[name]["weights"][:, 0], raw[name]["biases"]
            bn = layers.create_group(f"bn{i}").create_group("vars")
            for j, key in enumerate(("gamma", "beta", "mean", "var")):
                bn[str(j)] = raw[name][key]
        for head in ("conv8", "conv8_2"):
            conv = layers.create_group(head).create_group("vars")
            conv["0"], conv["1"] = raw[head]["weights"][:, 0], raw[head]["biases"]
    from_keras3 = build_encoder("soundnet8", weights=tmp_path / "soundnet.weights.h5")
    for key, value in encoder.net.state_dict().items():
        assert torch.equal(from_keras3.net.state_dict()[key], value), key
