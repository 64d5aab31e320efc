"""Every registered recipe declares what it produces, and its methods keep to the declaration:
probabilities and decisions for exactly its tasks, metrics for exactly its metric keys."""

import dataclasses

import numpy as np
import pytest
import torch

from emokd.config import to_dict
from emokd.constants import N_AU, TASKS
from emokd.errors import EmokdError
from emokd.train.data import FrameData
from emokd.train.recipes.base import RECIPES, MissingTasksError, build_recipe

SMALL = {"jeong2022": {"lstm_hidden": 8, "extractor": [8], "heads": [8], "discriminator": [4]},
         "vu2021": {"hidden": [8], "gru_hidden": 4}}


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    va = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    expr = rng.integers(0, 7, n).astype(np.int8)
    au = rng.integers(0, 2, (n, N_AU)).astype(np.int8)
    return FrameData(["v"], np.array([0]), np.array([n]), ["validation"], ["affwild2"],
                     torch.randn(n, 6, dtype=torch.float16), torch.randn(n, 4, dtype=torch.float16),
                     np.ones(n, bool), va, expr, au, window=3, stride=2)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_keeps_to_what_it_declares(name):
    recipe = build_recipe(name, SMALL[name])
    assert recipe.tasks and set(recipe.tasks) <= set(TASKS)
    assert recipe.score_key in recipe.metric_keys and len(set(recipe.metric_keys)) == len(recipe.metric_keys)
    data = _data()
    torch.manual_seed(0)
    model = recipe.build_model(data.dims).eval()
    assert dataclasses.is_dataclass(model.config) and model.config.__dataclass_params__.frozen
    assert (model.config.window, model.config.stride) == (3, 2)
    with torch.no_grad():
        raw = {k: v.numpy() for k, v in recipe.soft_outputs(recipe.forward(model, data.batch(np.arange(40)))).items()}
    wanted = {t.lower() for t in recipe.tasks}
    probs, decided = recipe.probabilities(raw), recipe.decode(raw)
    assert set(probs) == wanted and set(decided) == wanted
    assert probs["va"].shape == decided["va"].shape == (40, 2)
    np.testing.assert_array_equal(probs["va"], decided["va"])
    assert np.allclose(probs["expr"].sum(1), 1) and (probs["expr"] >= 0).all()
    np.testing.assert_array_equal(probs["expr"].argmax(1), decided["expr"])
    if "au" in wanted:
        assert probs["au"].shape == decided["au"].shape == (40, N_AU)
        assert ((probs["au"] >= 0) & (probs["au"] <= 1)).all()
        np.testing.assert_array_equal(probs["au"] > 0.5, decided["au"] == 1)
    metrics = recipe.metrics(raw, data.labels_of(np.arange(40)))
    assert set(metrics) == set(recipe.metric_keys)
    assert all(v == v for v in metrics.values()), metrics          # every task labelled: no NaN anywhere
    # the stored network config alone rebuilds the same network
    again = recipe.rebuild_model(to_dict(model.config))
    assert again.config == model.config
    again.load_state_dict(model.state_dict())


def test_a_recipe_without_aus_says_so_in_one_line():
    recipe = build_recipe("vu2021")
    assert recipe.tasks == ("VA", "EXPR")
    with pytest.raises(MissingTasksError) as err:
        recipe.require_tasks(TASKS, "an ABAW MTL submission")
    assert isinstance(err.value, EmokdError)
    assert str(err.value) == ("recipe vu2021 predicts VA, EXPR only: an ABAW MTL submission needs VA, EXPR, AU "
                              "(AU missing)")
    build_recipe("jeong2022").require_tasks(TASKS, "an ABAW MTL submission")     # has all three
