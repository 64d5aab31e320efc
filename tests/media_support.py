"""Helpers of the real-world media tests: one video through the extraction task into its own cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emokd.errors import WeightsError


def default_weights() -> None:
    """Skip when the default encoders' weights cannot be had (`make test` fetches them first)."""
    from emokd.models import weights as store

    try:
        for name in ("soundnet8", "fer_pyemotion"):
            store.asset_path(name)
    except WeightsError:
        try:
            store.fetch(["soundnet8", "fer_pyemotion"])
        except WeightsError as exc:
            pytest.skip(f"default weights not available here: {exc}")


def extract_one(path: Path, folder: Path, **config) -> tuple[dict, dict, dict]:
    """Extract one video with the task the workers run (whole-frame faces unless told otherwise);
    returns (the cached arrays, the video's attributes, the task's result)."""
    from emokd.cache import FeatureCache
    from emokd.extract.config import ExtractConfig
    from emokd.extract.driver import prepare_cache
    from emokd.extract.task import extract_video
    from emokd.index.manifest import VideoItem

    cfg = ExtractConfig(**{"face_source": "whole-frame", "batch_size": 16, **config}).resolved()
    url = str(folder / f"{Path(path).name}.zarr")
    item = VideoItem("v", Path(path), None, None, "train")
    prepare_cache([item], url, cfg)
    result = extract_video(item, url, cfg)
    assert result["status"] == "done", result["error"]
    cache = FeatureCache.open(url)
    return cache.read_video("v"), cache.video_attrs("v"), result


def assert_rows_equal(got: dict, want: dict, names=("face", "face_ok", "audio", "audio_ok", "pts")) -> None:
    for name in names:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
