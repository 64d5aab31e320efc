"""Loss terms against hand computations with a fixed teacher, and eq. 12/13 of the jeong2022 recipe."""

import math

import numpy as np
import pytest
import torch

from emokd.train import losses as L
from emokd.train.recipes.jeong2022 import losses as KD
from emokd.train.metrics import ccc
from emokd.train.recipes.base import EpochState, build_recipe

T = 2.5


def softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.fixture
def fixed():
    rng = np.random.default_rng(0)
    return {"student_expr": rng.normal(size=(5, 8)), "teacher_expr": rng.normal(size=(5, 8)) * 2,
            "student_au": rng.normal(size=(5, 12)), "teacher_au": rng.normal(size=(5, 12)) * 2,
            "student_va": np.tanh(rng.normal(size=(5, 2))), "teacher_va": np.tanh(rng.normal(size=(5, 2))),
            "va": np.tanh(rng.normal(size=(5, 2))), "expr": np.array([0, 3, 7, 3, 1]),
            "au": rng.integers(0, 2, (5, 12))}


def t(x, grad=False):
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


def test_va_ccc_loss_is_one_minus_mean_population_ccc(fixed):
    got = L.va_ccc_loss(t(fixed["student_va"]), t(fixed["va"]))
    want = 1 - (ccc(fixed["student_va"][:, 0], fixed["va"][:, 0]) + ccc(fixed["student_va"][:, 1], fixed["va"][:, 1])) / 2
    assert float(got) == pytest.approx(want, abs=1e-7)


def test_masked_rows_do_not_count(fixed):
    mask = torch.tensor([True, False, True, True, False])
    m = mask.numpy()
    got = L.va_ccc_loss(t(fixed["student_va"]), t(fixed["va"]), mask)
    want = 1 - np.mean([ccc(fixed["student_va"][m, k], fixed["va"][m, k]) for k in (0, 1)])
    assert float(got) == pytest.approx(want, abs=1e-7)
    ce = L.expr_ce_loss(t(fixed["student_expr"]), torch.tensor(fixed["expr"]), mask)
    p = softmax(fixed["student_expr"][m])
    assert float(ce) == pytest.approx(-np.mean(np.log(p[np.arange(3), fixed["expr"][m]])), abs=1e-9)
    none = L.au_bce_loss(t(fixed["student_au"], grad=True), t(fixed["au"]), torch.zeros(5, dtype=torch.bool))
    assert float(none.detach()) == 0.0
    none.backward()        # an empty term keeps the graph


def test_au_bce_hand(fixed):
    q = sigmoid(fixed["student_au"])
    y = fixed["au"]
    want = -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
    assert float(L.au_bce_loss(t(fixed["student_au"]), t(y))) == pytest.approx(want, abs=1e-9)


def test_distill_expr_teacher_is_the_target(fixed):
    s, te = fixed["student_expr"], fixed["teacher_expr"]
    want = -np.mean((softmax(te / T) * np.log(softmax(s / T))).sum(1))
    swapped = -np.mean((softmax(s / T) * np.log(softmax(te / T))).sum(1))
    student, teacher = t(s, grad=True), t(te, grad=True)
    got = KD.distill_expr_loss(student, teacher, T)
    assert float(got.detach()) == pytest.approx(want, abs=1e-9)
    assert abs(want - swapped) > 0.05            # the order matters, and ours is teacher -> target
    got.backward()
    assert teacher.grad is None and student.grad is not None
    # gradient of H(p_t, p_s) w.r.t. student logits: (p_s - p_t) / (T * B)
    want_grad = (softmax(s / T) - softmax(te / T)) / (T * len(s))
    assert student.grad.numpy() == pytest.approx(want_grad, abs=1e-9)


def test_distill_au_hand(fixed):
    s, te = fixed["student_au"], fixed["teacher_au"]
    p, q = sigmoid(te / T), sigmoid(s / T)
    want = -np.mean(p * np.log(q) + (1 - p) * np.log(1 - q))
    swapped = -np.mean(q * np.log(p) + (1 - q) * np.log(1 - p))
    student, teacher = t(s, grad=True), t(te, grad=True)
    got = KD.distill_au_loss(student, teacher, T)
    assert float(got.detach()) == pytest.approx(want, abs=1e-9)
    assert abs(want - swapped) > 0.01
    got.backward()
    assert teacher.grad is None


def test_distill_va_hand(fixed):
    s, te = fixed["student_va"], fixed["teacher_va"]
    want = 1 - (ccc(s[:, 0], te[:, 0]) + ccc(s[:, 1], te[:, 1])) / 2
    assert float(KD.distill_va_loss(t(s), t(te))) == pytest.approx(want, abs=1e-7)


def test_task_ce_hand():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    want = -np.mean(np.log(softmax(logits)[:, 1]))
    assert float(KD.task_ce_loss(t(logits), 1)) == pytest.approx(want, abs=1e-9)


def _batch(fixed, stream):
    n = 5
    return {"va": t(fixed["va"]), "va_mask": torch.ones(n, dtype=torch.bool),
            "expr": torch.tensor(fixed["expr"]), "expr_mask": torch.ones(n, dtype=torch.bool),
            "au": t(fixed["au"]), "au_mask": torch.ones(n, dtype=torch.bool),
            "soft": {"va": t(fixed["teacher_va"]), "expr": t(fixed["teacher_expr"]), "au": t(fixed["teacher_au"])},
            "stream": stream, "index": torch.arange(n)}


def _outputs(fixed):
    task_logits = np.array([[1.0, 0.2, -0.3]] * 5)
    return {"va": t(fixed["student_va"]), "expr": t(fixed["student_expr"]), "au": t(fixed["student_au"]),
            "task": t(task_logits)}


def _hand_terms(fixed):
    s, y = fixed, fixed
    sup = {"VA": 1 - np.mean([ccc(s["student_va"][:, k], y["va"][:, k]) for k in (0, 1)]),
           "EXPR": -np.mean(np.log(softmax(s["student_expr"])[np.arange(5), y["expr"]])),
           "AU": -np.mean(y["au"] * np.log(sigmoid(s["student_au"])) + (1 - y["au"]) * np.log(1 - sigmoid(s["student_au"])))}
    p, q = sigmoid(s["teacher_au"] / T), sigmoid(s["student_au"] / T)
    dist = {"VA": 1 - np.mean([ccc(s["student_va"][:, k], s["teacher_va"][:, k]) for k in (0, 1)]),
            "EXPR": -np.mean((softmax(s["teacher_expr"] / T) * np.log(softmax(s["student_expr"] / T))).sum(1)),
            "AU": -np.mean(p * np.log(q) + (1 - p) * np.log(1 - q))}
    return sup, dist


TASK_LOGITS = np.array([[1.0, 0.2, -0.3]])


@pytest.mark.parametrize("stream", ["VA", "EXPR", "AU"])
def test_student_loss_is_eq13(fixed, stream):
    """gamma_i (alpha L_i^S + L_i^D) + delta L^T + sum_{j != i} beta gamma_j L_j^D, by hand, to 1e-6."""
    recipe = build_recipe("jeong2022", {"delta_schedule": "constant", "delta": 0.5})
    state = EpochState(role="student", epoch=2, epochs=10, stale={"VA": 1, "EXPR": 0, "AU": 3})
    total, parts = recipe.loss(_outputs(fixed), _batch(fixed, stream), state)
    sup, dist = _hand_terms(fixed)
    gamma = {k: math.exp(0.5 * state.stale[k]) for k in ("VA", "EXPR", "AU")}
    task_ce = -np.log(softmax(TASK_LOGITS)[0])[["VA", "EXPR", "AU"].index(stream)]
    want = gamma[stream] * (10 * sup[stream] + dist[stream]) + 0.5 * task_ce
    want += sum(0.9 * gamma[j] * dist[j] for j in ("VA", "EXPR", "AU") if j != stream)
    assert float(total) == pytest.approx(want, rel=1e-6, abs=1e-6)
    assert float(parts[f"loss_{stream}"]) == pytest.approx(want, rel=1e-6, abs=1e-6)
    assert float(parts[f"sup_{stream}"]) == pytest.approx(sup[stream], abs=1e-6)       # unweighted
    assert float(parts[f"dist_{stream}"]) == pytest.approx(dist[stream], abs=1e-6)


@pytest.mark.parametrize("stream", ["VA", "EXPR", "AU"])
def test_teacher_loss_is_eq12(fixed, stream):
    """L_i^S + delta L^T: no alpha, no gamma (they are the student's), whatever the stale counts."""
    recipe = build_recipe("jeong2022", {"delta_schedule": "constant", "delta": 0.7})
    state = EpochState(role="teacher", epoch=5, epochs=11, stale={"VA": 2, "EXPR": 2, "AU": 4})
    total, parts = recipe.loss(_outputs(fixed), _batch(fixed, stream), state)
    sup, _ = _hand_terms(fixed)
    task_ce = -np.log(softmax(TASK_LOGITS)[0])[["VA", "EXPR", "AU"].index(stream)]
    assert float(total) == pytest.approx(sup[stream] + 0.7 * task_ce, rel=1e-6, abs=1e-6)
    assert float(parts["loss_task"]) == pytest.approx(task_ce, abs=1e-6)


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_mtl_batch_is_the_mtl_supervision_alone(fixed, role):
    """Algorithm 1: an MTL batch's loss is L_MTL^S = L_VA^S + L_EXPR^S + L_AU^S, for both roles: no
    alpha, gamma, distillation or discriminator term."""
    recipe = build_recipe("jeong2022", {"delta_schedule": "constant", "delta": 1.0})
    state = EpochState(role=role, epoch=3, epochs=10, stale={"VA": 2, "EXPR": 1, "AU": 3})
    total, parts = recipe.loss(_outputs(fixed), _batch(fixed, "MTL"), state)
    sup, _ = _hand_terms(fixed)
    assert float(total) == pytest.approx(sum(sup.values()), rel=1e-6, abs=1e-6)
    assert set(parts) == {"sup_MTL", "loss_MTL"}


def test_delta_schedule_is_e_plus_one_over_e():
    recipe = build_recipe("jeong2022", {"delta": 0.8})          # linear by default
    assert [recipe.delta(EpochState(role="teacher", epoch=e, epochs=4)) for e in range(4)] == \
        pytest.approx([0.2, 0.4, 0.6, 0.8])
    constant = build_recipe("jeong2022", {"delta": 0.5, "delta_schedule": "constant"})
    assert constant.delta(EpochState(role="teacher", epoch=0, epochs=4)) == 0.5


def test_heads_have_no_dropout_by_default_and_the_extractor_has():
    from torch import nn

    from emokd.train.recipes.jeong2022.net import MultitaskNet

    model = build_recipe("jeong2022", {}).build_model({"face": 4, "audio": 3, "window": 2, "stride": 1})
    assert isinstance(model, MultitaskNet)
    for head in (model.va_head, model.expr_head, model.au_head):
        assert all(m.p == 0.0 for m in head.modules() if isinstance(m, nn.Dropout))
    assert all(m.p == 0.5 for m in model.extractor.modules() if isinstance(m, nn.Dropout))
    assert all(m.p == 0.5 for m in model.discriminator.modules() if isinstance(m, nn.Dropout))
