"""Batches per epoch: proportional per-task batch sizes (every frame of every stream once per epoch,
as the official loader), the fixed-size cycling kept as an option, and the recipe's plan."""

import math

import numpy as np
import pytest

from emokd.train.data import load_frame_data
from emokd.train.recipes.base import build_recipe
from emokd.train.streams import cycled_rounds, proportional_rounds
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache


def test_proportional_rounds_see_every_frame_once():
    streams = {"VA": np.arange(1000), "EXPR": np.arange(2000, 2300), "AU": np.arange(5000, 5030),
               "MTL": np.arange(9000, 9007)}
    rounds = proportional_rounds(streams, 256, np.random.default_rng(0))
    assert len(rounds) == math.ceil(1000 / 256) == 4
    for name, idx in streams.items():
        seen = np.concatenate([b for r in rounds for n, b in r if n == name])
        assert sorted(seen.tolist()) == idx.tolist(), name                 # each frame exactly once
    sizes = {name: [len(b) for r in rounds for n, b in r if n == name] for name in streams}
    assert sizes["VA"] == [250] * 4 and sizes["EXPR"] == [75] * 4           # len_i / rounds
    assert sizes["AU"] == [8, 8, 7, 7] and sizes["MTL"] == [3, 2, 2]        # >= 2 per batch (BatchNorm, CCC)
    assert [[n for n, _ in r] for r in rounds][0] == ["VA", "EXPR", "AU", "MTL"]   # Algorithm 1 order


def test_a_one_frame_stream_is_left_out_and_empty_input_gives_no_round():
    rounds = proportional_rounds({"VA": np.arange(10), "AU": np.array([7])}, 4, np.random.default_rng(0))
    assert {n for r in rounds for n, _ in r} == {"VA"}
    assert proportional_rounds({"VA": np.zeros(0, int)}, 4, np.random.default_rng(0)) == []


def test_cycling_repeats_the_small_streams():
    streams = {"VA": np.arange(1000), "MTL": np.arange(9000, 9007)}
    rounds = cycled_rounds(streams, 256, np.random.default_rng(0))
    mtl = np.concatenate([b for r in rounds for n, b in r if n == "MTL"])
    assert len(rounds) == 3 and len(mtl) == 3 * 7                         # MTL seen three times


def frames_seen(plan) -> dict[str, np.ndarray]:
    """Per stream, every frame id the epoch's batches hold (with repeats)."""
    out: dict[str, list[np.ndarray]] = {}
    for step in plan.steps:
        for name, idx, _ in step:
            out.setdefault(name, []).append(np.asarray(idx))
    return {name: np.concatenate(parts) for name, parts in out.items()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("s") / "c.zarr")
    cache = write_synthetic_cache(url, SyntheticSpec(n_videos=4, frames_per_video=300,
                                                     missing={"VA": 0.2, "EXPR": 0.6, "AU": 0.9}))
    return load_frame_data(cache, ["train", "validation"], window=2, stride=1)


@pytest.mark.parametrize("steps", ["per_batch", "per_round"])
def test_the_recipe_plan_is_one_pass_of_each_stream(data, steps):
    recipe = build_recipe("jeong2022", {"steps": steps})
    plan = recipe.train_steps(data, "train", 64, np.random.default_rng(3))
    seen = frames_seen(plan)
    for task in ("VA", "EXPR", "AU", "MTL"):
        assert sorted(seen[task].tolist()) == data.labelled("train", task).tolist(), task
    n_rounds = math.ceil(len(data.labelled("train", "VA")) / 64)
    assert len(plan) == (n_rounds if steps == "per_round" else sum(len(s) for s in plan.steps))
    batches = next(iter(plan))
    assert [b["stream"] for b in batches] == (["VA", "EXPR", "AU", "MTL"] if steps == "per_round" else ["VA"])


def test_cycle_batching_is_an_option(data):
    plan = build_recipe("jeong2022", {"batching": "cycle"}).train_steps(data, "train", 64, np.random.default_rng(3))
    seen = frames_seen(plan)
    assert len(seen["MTL"]) > len(data.labelled("train", "MTL"))          # the small stream repeats
    assert all(len(idx) == min(64, len(data.labelled("train", name))) for s in plan.steps for name, idx, _ in s)
