"""Fixtures of the data-safety tests (test_safety_*.py): a small Aff-Wild2 tree whose videos all have
crop folders (no face detector: fast), and one uninterrupted extraction of it, the reference every
interrupted, concurrent or repeated run must equal array for array."""

import shutil

import pytest

from emokd.errors import WeightsError

SAFETY_VIDEOS = (("alpha", 30, 30), ("bravo", 24, 25), ("charlie", 30, 30), ("delta", 27, 30))


@pytest.fixture(scope="session")
def default_weights():
    from emokd.models import weights as store

    try:
        return {name: store.asset_path(name) for name in ("soundnet8", "fer_pyemotion")}
    except WeightsError:
        try:
            return store.fetch(["soundnet8", "fer_pyemotion"])
        except WeightsError as exc:
            pytest.skip(f"default weights not available here: {exc}")


@pytest.fixture(scope="session")
def safety_tree(tmp_path_factory, default_weights):
    from emokd.testing.affwild2_tree import TreeVideo, write_affwild2_tree

    root = tmp_path_factory.mktemp("safety") / "data"
    return write_affwild2_tree(root, [TreeVideo(name, n, fps, crop_gaps=(2,), audio="speechlike", size=(96, 96))
                                      for name, n, fps in SAFETY_VIDEOS])


@pytest.fixture(scope="session")
def safety_reference(safety_tree, tmp_path_factory):
    """(url, FeatureCache, its ExtractionSummary) of one uninterrupted one-worker run over `safety_tree`."""
    from emokd.cache import FeatureCache
    from emokd.extract.config import ExtractConfig
    from emokd.extract.driver import run_extraction
    from emokd.index.dataset import index_dataset

    url = str(tmp_path_factory.mktemp("safety_ref") / "cache.zarr")
    summary = run_extraction(index_dataset(safety_tree.root).items, url, ExtractConfig(workers=1, pack_frames=0),
                             progress=False)   # a shard per video, as the kill tests count them
    assert (summary.done, summary.failed) == (len(SAFETY_VIDEOS), 0)
    return url, FeatureCache.open(url), summary


@pytest.fixture
def reference_copy(safety_reference, tmp_path):
    """A copy of the reference cache, to damage."""
    copy = tmp_path / "cache.zarr"
    shutil.copytree(safety_reference[0], copy)
    return copy
