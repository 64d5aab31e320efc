"""VA bins, distillation and mixing of the vu2021 recipe, against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from emokd.train.recipes.vu2021.bins import VABins
from emokd.train.recipes.vu2021.net import Vu2021Net, Vu2021NetConfig
from emokd.train.losses import ccc_torch
from emokd.train.recipes.vu2021.losses import Vu2021LossConfig, expr_loss, kd_kl, va_loss


def test_bins_edges_and_expectation_points_agree():
    bins = VABins(20)
    assert len(bins.edges) == 21 and len(bins.centres) == 20
    assert bins.edges[0] == -1.0 and bins.edges[-1] == 1.0
    assert np.allclose(bins.centres, np.arange(-0.95, 1.0, 0.1))
    # each expectation point lies inside its own bin (the reference code's did not)
    assert np.array_equal(bins.bin_of(bins.centres), np.arange(20))
    # a confident one-hot prediction reads out as its bin centre
    logits = torch.full((20, 20), -50.0) + 100.0 * torch.eye(20)
    assert torch.allclose(bins.expectation(logits), torch.tensor(bins.centres, dtype=torch.float32), atol=1e-5)
    assert float(bins.expectation(torch.zeros(20))) == pytest.approx(0.0, abs=1e-6)


def test_bin_of_values_clipping_and_missing():
    bins = VABins(20)
    values = np.array([-1.0, -0.97, -0.05, 0.0, 0.42, 0.999, 1.0, 1.7, -3.0, np.nan])
    assert bins.bin_of(values).tolist() == [0, 0, 9, 10, 14, 19, 19, 19, 0, -1]
    t = torch.tensor(values, dtype=torch.float32)
    assert bins.bin_of_tensor(t).tolist() == [0, 0, 9, 10, 14, 19, 19, 19, 0, -1]
    va = np.array([[0.0, -1.0], [0.42, 0.999], [np.nan, 0.1]])
    assert bins.cell_of(va).tolist() == [10 * 20 + 0, 14 * 20 + 19, -1]


def test_kd_kl_hand_computed():
    t = 1.5
    teacher = torch.tensor([[0.0, 0.0]])                  # p_t = (1/2, 1/2)
    student = torch.tensor([[math.log(3.0) * t, 0.0]])    # p_s = (3/4, 1/4) at temperature T
    expected = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)   # = 0.5 ln(4/3)
    assert float(kd_kl(student, teacher, t)[0]) == pytest.approx(expected * t * t, rel=1e-6)
    assert float(kd_kl(teacher, teacher, t)[0]) == pytest.approx(0.0, abs=1e-7)
    # direction: KL(teacher || student), not the reverse
    reverse = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert float(kd_kl(teacher, student, t)[0]) == pytest.approx(reverse * t * t, rel=1e-6)


def test_expr_loss_mixing():
    cfg = Vu2021LossConfig()
    logits = torch.zeros(2, 7)                            # uniform: CE = ln 7
    target = torch.tensor([3, -1])
    assert float(expr_loss(logits, target, None, cfg)) == pytest.approx(math.log(7))
    assert float(expr_loss(logits, target, logits.clone(), cfg)) == pytest.approx(0.6 * math.log(7) / 2)
    teacher = torch.zeros(2, 7)
    teacher[1, 0] = 1.5 * math.log(7.0)                   # p_t(row 1) = (7, 1, ..., 1) / 13
    p = np.array([7.0] + [1.0] * 6) / 13
    kl_row1 = float((p * np.log(p * 7)).sum()) * 2.25
    got = float(expr_loss(logits, target, teacher, cfg))
    assert got == pytest.approx((0.6 * math.log(7) + 0.0 + kl_row1) / 2, rel=1e-5)
    # class 7 (Other) is not one of the recipe's 7 classes: treated as missing
    assert float(expr_loss(logits, torch.tensor([7, 7]), None, cfg)) == 0.0


def test_ccc_matches_numpy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50) * 0.5 + 0.3
    cov = np.mean((x - x.mean()) * (y - y.mean()))
    want = 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    got = float(ccc_torch(torch.tensor(x)[:, None], torch.tensor(y)[:, None])[0])
    assert got == pytest.approx(want, rel=1e-6)


def test_va_loss_ground_truth_only():
    bins = VABins(20)
    cfg = Vu2021LossConfig()
    logits = torch.zeros(3, 2, 20)                        # uniform: CE = ln 20, expectation 0 -> CCC 0
    target = torch.tensor([[0.5, -0.5], [-0.5, 0.5], [float("nan"), float("nan")]])
    assert float(va_loss(logits, target, None, cfg, bins)) == pytest.approx(math.log(20) + 1.0, rel=1e-5)
    # perfect one-hot predictions on the bin centres: CE ~ 0 and CCC = 1
    target = torch.tensor([[0.55, -0.45], [-0.45, 0.55]])
    logits = torch.full((2, 2, 20), -30.0)
    for i, row in enumerate(bins.bin_of(target.numpy())):
        logits[i, 0, row[0]] = logits[i, 1, row[1]] = 30.0
    assert float(va_loss(logits, target, None, cfg, bins)) == pytest.approx(0.0, abs=1e-4)


def test_network_masks_padding_and_shapes():
    torch.manual_seed(0)
    net = Vu2021Net(Vu2021NetConfig(face_dim=8, window=5, stride=1, hidden=(16,), gru_hidden=4)).eval()
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[0, 0, 0, 0, 1], [1, 1, 1, 1, 1]], dtype=torch.bool)
    out = net(x, mask)
    assert out["expr"].shape == (2, 7) and out["va_logits"].shape == (2, 2, 20) and out["va"].shape == (2, 2)
    assert bool((out["va"].abs() < 1).all())
    x2 = x.clone()
    x2[0, :4] = 1000.0                                    # whatever sits in masked positions is ignored
    assert torch.allclose(net(x2, mask)["expr"][0], out["expr"][0], atol=1e-6)
    frame_only = Vu2021Net(Vu2021NetConfig(face_dim=8, window=5, stride=1, hidden=(16,), temporal=False)).eval()
    a = frame_only(x)["expr"]
    x3 = x.clone()
    x3[:, :4] = 0.0
    assert torch.allclose(frame_only(x3)["expr"], a)      # the frame-level model reads the last frame only


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_k_over_10_falls_in_the_bin_that_starts_at_it_on_both_paths(dtype):
    """Every AFEW-VA label is an integer / 10: value k/10 is edge k + 10 of the 21, so it falls in
    [edges[k + 10], edges[k + 11]) (the last edge, 1.0, closes bin 19), in numpy and in torch."""
    bins = VABins(20)
    values = np.array([k / 10 for k in range(-10, 11)], dtype)
    want = np.minimum(np.arange(21), 19)
    assert bins.bin_of(values).tolist() == want.tolist()
    for tdtype in (torch.float32, torch.float64):
        assert bins.bin_of_tensor(torch.tensor(values, dtype=tdtype)).tolist() == want.tolist()
    edges = bins.edges
    for v, b in zip(values.astype(np.float64), want):
        assert edges[b] - 1e-6 <= v and (v < edges[b + 1] - 1e-6 or b == 19)
    # floor((v + 1) / 0.1) alone, as before: some of the 21 land one bin low
    naive = np.floor((values.astype(np.float64) + 1) / 0.1).astype(int)
    assert (naive != np.arange(21)).any()


def test_numpy_and_torch_bins_agree_everywhere():
    bins = VABins(20)
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(-1.2, 1.2, 5000), np.round(rng.uniform(-1, 1, 5000), 2)]).astype(np.float32)
    assert bins.bin_of(values).tolist() == bins.bin_of_tensor(torch.tensor(values)).tolist()
