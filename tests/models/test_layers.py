"""The gradient reaching the extractor from the discriminator is exactly -coefficient times the plain one."""

import pytest
import torch

from emokd.models.layers import GradientReversal, reverse_gradient
from emokd.train.recipes.jeong2022.net import Jeong2022NetConfig, MultitaskNet


def test_identity_forward_and_reversed_backward():
    x = torch.randn(4, 3, requires_grad=True)
    y = reverse_gradient(x, 0.7)
    assert torch.equal(y, x)
    weights = torch.randn(4, 3)
    (y * weights).sum().backward()
    assert torch.allclose(x.grad, -0.7 * weights)


def _extractor_grads(coefficient: float) -> list[torch.Tensor]:
    torch.manual_seed(0)
    net = MultitaskNet(Jeong2022NetConfig(6, 4, window=3, stride=1, lstm_hidden=8, extractor=(16, 12), heads=(8,),
                                          discriminator=(8,), dropout=0.5, grl_coefficient=coefficient)).double()
    net.eval()                  # dropout off, BatchNorm on running stats: a deterministic function
    torch.manual_seed(1)
    face, audio = torch.randn(5, 3, 6).double(), torch.randn(5, 4).double()
    out = net(face, audio)
    loss = torch.nn.functional.cross_entropy(out["task"], torch.tensor([0, 1, 2, 1, 0]))
    loss.backward()
    return [p.grad.clone() for p in [*net.extractor.parameters(), *net.lstm.parameters()]]


@pytest.mark.parametrize("coefficient", [1.0, 0.5, 0.3])
def test_extractor_gradient_from_discriminator_is_reversed(coefficient):
    plain = _extractor_grads(-1.0)           # -(-1) = +1: the GRL lets the plain gradient through
    reversed_ = _extractor_grads(coefficient)
    assert any(g.abs().sum() > 0 for g in plain)
    for g_rev, g_plain in zip(reversed_, plain):
        if coefficient in (1.0, 0.5):        # powers of two scale floating point exactly
            assert torch.equal(g_rev, -coefficient * g_plain)
        else:
            assert torch.allclose(g_rev, -coefficient * g_plain, rtol=1e-12, atol=0)


def test_discriminator_itself_gets_the_plain_gradient():
    # the reversal sits before the discriminator: its own weights still learn to classify tasks
    net = GradientReversal(0.5)
    assert "coefficient=0.5" in repr(net)
    torch.manual_seed(0)
    a = MultitaskNet(Jeong2022NetConfig(6, 4, 3, 1, lstm_hidden=8, extractor=(8,), heads=(8,), discriminator=(8,),
                                        grl_coefficient=1.0))
    torch.manual_seed(0)
    b = MultitaskNet(Jeong2022NetConfig(6, 4, 3, 1, lstm_hidden=8, extractor=(8,), heads=(8,), discriminator=(8,),
                                        grl_coefficient=-1.0))
    for net_ in (a, b):
        net_.eval()
        out = net_(torch.ones(2, 3, 6), torch.ones(2, 4))
        out["task"].sum().backward()
    for pa, pb in zip(a.discriminator.parameters(), b.discriminator.parameters()):
        assert torch.equal(pa.grad, pb.grad)
