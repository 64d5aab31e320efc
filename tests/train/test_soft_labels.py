"""Soft labels are tied to the checkpoint that made them: a teacher retrained at the same path
replaces its predecessor's predictions instead of silently reusing them."""

import shutil

import numpy as np

from emokd.cache import FeatureCache
from emokd.train.loop import train
from emokd.train.soft_labels import checkpoint_sha256, ensure_soft_labels
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache
from emokd.train.config import TrainConfig

SMALL = {"lstm_hidden": 8, "extractor": [16], "heads": [8], "discriminator": [8], "dropout": 0.0}


def teacher_config(url, out, seed):
    return TrainConfig(cache=url, run=str(out), epochs=1, batch_size=64, lr=3e-3, window=2, stride=1,
                       recipe_options=dict(SMALL), device="cpu", seed=seed)


def test_retrained_teacher_at_the_same_path_rewrites_its_soft_labels(tmp_path):
    url = str(tmp_path / "cache.zarr")
    write_synthetic_cache(url, SyntheticSpec(n_videos=4, frames_per_video=60))
    run = tmp_path / "teacher"
    first = train(teacher_config(url, run, seed=0))
    cache = FeatureCache.open(url)
    vid = cache.video_ids()[0]
    old_values = cache.read_soft(first["soft_run"], vid)["expr"]
    old_sha = checkpoint_sha256(run)
    assert cache.soft_video_attrs(first["soft_run"], vid)["checkpoint_sha256"] == old_sha
    assert ensure_soft_labels(url, run, "cpu") == first["soft_run"]          # same checkpoint: reused

    shutil.rmtree(run)
    second = train(teacher_config(url, run, seed=1))
    new_sha = checkpoint_sha256(run)
    assert new_sha != old_sha and second["soft_videos_written"] == 4
    cache = FeatureCache.open(url)
    assert cache.soft_video_attrs(second["soft_run"], vid)["checkpoint_sha256"] == new_sha
    assert cache.soft_run_attrs(second["soft_run"])["checkpoint_sha256"] == new_sha
    assert not np.allclose(cache.read_soft(second["soft_run"], vid)["expr"], old_values)
