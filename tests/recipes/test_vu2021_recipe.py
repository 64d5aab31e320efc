"""Recipe vu2021 over in-memory frame data: sets from config, steps, masking, sampling, metrics."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from emokd.errors import ConfigError
from emokd.train.data import FrameData
from emokd.train.recipes.base import EpochState, build_recipe
from emokd.train.recipes.vu2021.recipe import Vu2021, Vu2021Config, vu2021_metrics
from emokd.train.recipes.vu2021.sampling import balance_weights, set_frames

NAN = np.nan


def _data(window=3):
    """Four items: an Aff-Wild2 video (4 frames, shared EXPR+VA), 2 ExpW stills, an AFEW-VA clip (3)."""
    lens = np.array([4, 1, 1, 3])
    n = lens.sum()
    va = np.full((n, 2), NAN, np.float32)
    expr = np.full(n, -1, np.int8)
    va[0:3] = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]     # affwild2 frames 0-2 VA
    expr[1:4] = [4, 7, 2]                                # frame 2 "Other": not one of the 7
    expr[4], expr[5] = 1, 1                              # expw stills
    va[6:9] = [[-0.5, 0.5], [-0.6, 0.6], [-0.7, 0.7]]   # afew_va
    face = torch.arange(n, dtype=torch.float16)[:, None].repeat(1, 4)
    return FrameData(["aw/v1", "expw/a/0", "expw/b/0", "afew_va/001"], np.array([0, 4, 5, 6]), lens,
                     ["train"] * 4, ["affwild2", "expw", "expw", "afew_va"], face,
                     torch.zeros(n, 2, dtype=torch.float16),
                     np.ones(n, bool), va, expr, np.full((n, 12), -1, np.int8), window=window, stride=1)


def test_sets_follow_config():
    data = _data()
    assert set_frames(data, "train", "EXPR", ()).tolist() == [1, 3, 4, 5]
    assert set_frames(data, "train", "EXPR", ("expw",)).tolist() == [4, 5]
    assert set_frames(data, "train", "VA", ("affwild2", "afew_va")).tolist() == [0, 1, 2, 6, 7, 8]
    assert set_frames(data, "train", "EXPR_VA", ()).tolist() == [1]          # the shared frame
    recipe = build_recipe("vu2021", {"expr_datasets": ["expw"], "va_datasets": ["afew_va"]})
    streams = recipe.streams(data, "train")
    assert {k: v.tolist() for k, v in streams.items()} == {"EXPR": [4, 5], "VA": [6, 7, 8], "EXPR_VA": [1]}
    no_comb = build_recipe("vu2021", {"combination": False})
    assert sorted(no_comb.streams(data, "train")) == ["EXPR", "VA"]
    with pytest.raises(ConfigError, match="unknown key"):
        build_recipe("vu2021", {"expr_dataset": ["expw"]})
    with pytest.raises(ConfigError, match="rounds: 'short'"):
        build_recipe("vu2021", {"rounds": "short"})


def test_one_batch_per_set_per_step_and_short_items():
    data = _data()
    recipe = Vu2021(Vu2021Config(expr_datasets=("expw",), va_datasets=("afew_va",)))
    steps = list(recipe.train_steps(data, "train", 2, np.random.default_rng(0)))
    # EXPR has 2 frames (1 batch of 2), VA 3 (1 batch), EXPR_VA 1 (1 batch): shortest set -> 1 step
    assert len(steps) == 1
    assert [b["stream"] for b in steps[0]] == ["EXPR", "VA", "EXPR_VA"]
    expr_batch = steps[0][0]
    # a still is a window of one real frame: its window repeats it
    for row, frame in zip(expr_batch["face"][:, :, 0].tolist(), expr_batch["index"].tolist()):
        assert row == [float(frame)] * 3
    steps = list(Vu2021(Vu2021Config(rounds="max")).train_steps(data, "train", 1, np.random.default_rng(0)))
    assert len(steps) == 6 and all(len(s) == 3 for s in steps)
    steps = list(Vu2021(Vu2021Config(rounds=4)).train_steps(data, "train", 2, np.random.default_rng(0)))
    assert len(steps) == 4


def test_loss_roles_and_combination_masking():
    data = _data()
    torch.manual_seed(0)
    recipe = Vu2021(Vu2021Config(hidden=(8,), gru_hidden=4))
    model = recipe.build_model(data.dims)
    batch = data.batch(np.array([0, 1, 2]), stream="VA")     # frame 1 carries EXPR 4 too
    out = recipe.forward(model, batch)
    teacher = EpochState(role="teacher")
    total, parts = recipe.loss(out, batch, teacher)
    assert total.requires_grad and parts["expr_VA"] > 0        # shared frame trains the EXPR head
    ablation = Vu2021(Vu2021Config(hidden=(8,), gru_hidden=4, combination=False))
    _, parts = ablation.loss(out, batch, teacher)
    assert parts["expr_VA"] == 0.0                             # without combination: VA labels only
    with pytest.raises(ConfigError, match="va_logits"):
        recipe.loss(out, batch, EpochState(role="student"))
    soft = recipe.soft_outputs(out)
    assert soft["expr"].shape == (3, 7) and soft["va_logits"].shape == (3, 40) and soft["va"].shape == (3, 2)
    batch["soft"] = {k: v.detach() for k, v in soft.items()}
    _, parts_s = recipe.loss(out, batch, EpochState(role="student"))
    # teacher == student: KD is 0, so the EXPR loss is 0.6 x CE of the one labelled frame, over 3 frames
    ce = torch.nn.functional.cross_entropy(out["expr"][1:2], torch.tensor([4]))
    assert parts_s["expr_VA"] == pytest.approx(0.6 * ce.item() / 3, rel=1e-5)


def test_balance_weights_hand_computed():
    data = _data()
    recipe = Vu2021()
    w = balance_weights(data, np.array([1, 3, 4, 5]), "EXPR", recipe.bins)   # classes 4, 2, 1, 1
    assert np.allclose(w, np.array([1, 1, 0.5, 0.5]) / 3)
    w = balance_weights(data, np.array([0, 1, 6, 7]), "VA", recipe.bins)
    # cells: (0.1,0.2)->(11,12), (0.3,0.4)->(13,14), (-0.5,0.5)->(5,15), (-0.6,0.6)->(4,16): all distinct
    assert np.allclose(w, 0.25)
    steps = list(Vu2021(Vu2021Config(balanced=True)).train_steps(data, "train", 2, np.random.default_rng(1)))
    assert len(steps) == 1 and [b["stream"] for b in steps[0]] == ["EXPR", "VA", "EXPR_VA"]


def test_balanced_sampling_evens_out_classes():
    data = _data()
    data.expr[:] = -1
    data.expr[:8] = [0, 0, 0, 0, 0, 0, 0, 3]
    idx = set_frames(data, "train", "EXPR", ())
    w = balance_weights(data, idx, "EXPR", Vu2021().bins)
    draws = np.random.default_rng(0).choice(idx, size=4000, p=w)
    share_rare = float((data.expr[draws] == 3).mean())
    assert abs(share_rare - 0.5) < 0.03                  # 1 frame of 8, drawn half of the time


def test_metrics_against_sklearn():
    rng = np.random.default_rng(0)
    true_expr = rng.integers(0, 8, 60)            # 7 ("Other") is left out of the 7-class scores
    logits = rng.normal(size=(60, 7))
    va_true = rng.uniform(-1, 1, (60, 2)).astype(np.float32)
    va_true[:5] = NAN
    raw = {"expr": logits, "va": va_true * 0.5 + 0.1, "va_logits": np.zeros((60, 40))}
    m = Vu2021().metrics(raw, {"va": va_true, "expr": true_expr, "au": np.full((60, 12), -1)})
    keep = true_expr < 7
    pred = logits.argmax(1)[keep]
    f1 = f1_score(true_expr[keep], pred, labels=range(7), average="macro", zero_division=0)
    acc = accuracy_score(true_expr[keep], pred)
    assert m["f1_expr"] == pytest.approx(f1) and m["acc_expr"] == pytest.approx(acc)
    assert m["expr_score"] == pytest.approx(0.67 * f1 + 0.33 * acc)
    v = va_true[5:, 0]
    pv = v * 0.5 + 0.1
    want = 2 * np.cov(pv, v, bias=True)[0, 1] / (pv.var() + v.var() + (pv.mean() - v.mean()) ** 2)
    assert m["ccc_v"] == pytest.approx(want, rel=1e-5)
    assert m["score"] == pytest.approx(m["ccc_va"] + m["expr_score"])
    assert not math.isnan(vu2021_metrics({"va": raw["va"], "expr": logits.argmax(1)},
                                         {"va": va_true, "expr": true_expr})["score"])


def test_the_gru_gets_the_window_mask_of_the_batch():
    """A still is a window of one real frame: the batch's face_mask says so, and the recipe hands it
    to the network (its GRU's mask channel is not a constant 1)."""
    data = _data(window=3)
    batch = data.batch(np.array([4, 7, 8, 0]))      # a still; clip frames 1 and 2; video frame 0
    assert batch["face_mask"].tolist() == [[False, False, True], [False, True, True], [True, True, True],
                                           [False, False, True]]
    recipe = build_recipe("vu2021", {"hidden": [8], "gru_hidden": 4})
    model = recipe.build_model(data.dims).eval()
    seen = {}
    real_forward = model.forward

    def spy(x, mask=None):
        seen["mask"] = mask
        return real_forward(x, mask)
    model.forward = spy
    recipe.forward(model, batch)
    assert torch.equal(seen["mask"], batch["face_mask"])
    unmasked = model.features(batch["face"])          # without the mask the padding would count
    assert not torch.allclose(unmasked[0], model.features(batch["face"], batch["face_mask"])[0])


def test_a_dataset_name_the_cache_lacks_is_refused_naming_what_it_has():
    from emokd.train.evaluate import evaluated_videos

    data = _data()
    with pytest.raises(ConfigError, match=r"recipe_options.va_datasets: \['afew'\] not in the cache; its datasets "
                                          r"are \['afew_va', 'affwild2', 'expw'\]"):
        build_recipe("vu2021", {"va_datasets": ["afew"]}).check_data(data)
    recipe = build_recipe("vu2021", {})                      # evaluation: Aff-Wild2 only by default
    assert recipe.evaluation_datasets() == ("affwild2",)
    with pytest.raises(ConfigError, match=r"eval_datasets: \['target'\] not in the cache"):
        evaluated_videos(build_recipe("vu2021", {"eval_datasets": ["target"]}), data, "train")
    assert evaluated_videos(recipe, data, "train").tolist() == [0]      # the affwild2 video only
