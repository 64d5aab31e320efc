"""The in-memory training data: windows gathered by index, no-face filling, streams, soft labels."""

import numpy as np
import pytest
import torch

from emokd.errors import CacheError
from emokd.train.data import fill_within_items, load_frame_data
from emokd.train.streams import stream_batches
from emokd.testing.caches import SyntheticSpec, label_function, write_synthetic_cache


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    spec = SyntheticSpec(n_videos=3, frames_per_video=40, face_dim=4, audio_dim=3, no_face=0.2,
                         validation_fraction=0.34, seed=3)
    return write_synthetic_cache(str(tmp_path_factory.mktemp("c") / "c.zarr"), spec), spec


def _earlier_face(ok: np.ndarray, k: int) -> int:
    """The nearest frame at or before k with a face, by hand (-1 if none)."""
    while k >= 0 and not ok[k]:
        k -= 1
    return k


def test_prediction_fill_per_item():
    ok = np.array([False, True, False, False, True, False])
    values = np.arange(6)[:, None] * 10
    assert fill_within_items(values, ok, np.zeros(6, np.int8))[:, 0].tolist() == [10, 10, 10, 10, 40, 40]  # one item
    # three items: [F T F], [F F] (no face: unchanged), [T F F T]; never filled across items
    ok = np.array([0, 1, 0, 0, 0, 1, 0, 0, 1], bool)
    item = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    values = np.arange(9) * 10
    assert fill_within_items(values, ok, item).tolist() == [10, 10, 10, 30, 40, 50, 50, 50, 80]


def test_load_matches_the_cache_and_fills_no_face_frames(cache):
    c, spec = cache
    data = load_frame_data(c, None, window=3, stride=2)
    assert data.n_frames == 3 * 40 and data.dims == {"face": 4, "audio": 3, "window": 3, "stride": 2}
    assert [s["VA"] for s in data.video_splits] == ["train", "train", "validation"]
    assert data.face.dtype == torch.float16
    for v, vid in enumerate(data.video_ids):
        raw = c.read_video(vid)
        s = int(data.video_start[v])
        ok = raw["face_ok"]
        for k in range(40):
            src = _earlier_face(ok, k)
            want = raw["face"][src] if src >= 0 else np.zeros(4, np.float16)
            assert np.array_equal(data.face[s + k].numpy(), want)
        assert np.array_equal(data.audio[s:s + 40].numpy(), raw["audio"])
        lab = c.read_labels(vid)
        assert np.array_equal(data.expr[s:s + 40], lab["expr"])
        assert np.array_equal(np.isnan(data.va[s:s + 40]), np.isnan(lab["va"]))


def test_window_gathers_frames_at_stride_clamped_to_the_video(cache):
    c, _ = cache
    data = load_frame_data(c, None, window=4, stride=3)
    s1 = int(data.video_start[1])                         # second video starts at frame 40
    idx = np.array([s1 + 0, s1 + 5, s1 + 39, 20])
    win = data.window_index(torch.as_tensor(idx)).numpy()
    assert win.tolist() == [[s1] * 4, [s1, s1, s1 + 2, s1 + 5], [s1 + 30, s1 + 33, s1 + 36, s1 + 39],
                            [11, 14, 17, 20]]
    batch = data.batch(idx)
    assert torch.equal(batch["face"], data.face[torch.as_tensor(win)].float())
    assert torch.equal(batch["audio"], data.audio[torch.as_tensor(idx)].float())


def test_labelled_indices_and_masks(cache):
    c, spec = cache
    data = load_frame_data(c, ["train"], window=2, stride=1)
    assert [s["EXPR"] for s in data.video_splits] == ["train", "train"]
    for task in ("VA", "EXPR", "AU", "MTL"):
        idx = data.labelled("train", task)
        assert data.face_ok[idx].all()
        mask = data.task_mask(task) & data.face_ok
        assert idx.tolist() == np.flatnonzero(mask).tolist()
    idx = data.labelled("train", "EXPR", require_face=False)
    b = data.batch(idx)
    assert b["expr_mask"].all() and torch.equal(b["expr"], torch.as_tensor(data.expr[idx]).long())
    # labels equal the known function of the (float16) embeddings, on frames with a face
    idx = data.labelled("train", "EXPR")
    z = np.concatenate([data.face.numpy(), data.audio.numpy()], 1).astype(np.float32)
    _, expr, _ = label_function(spec)(z)
    assert np.array_equal(expr[idx], data.expr[idx])


def test_stream_batches_cycle_tasks_and_reshuffle():
    streams = {"A": np.arange(10), "B": np.arange(100, 104), "C": np.zeros(0, int)}
    rng = np.random.default_rng(0)
    got = list(stream_batches(streams, 3, rng, "max"))
    assert [name for name, _ in got] == ["A", "B"] * 3            # A has 3 full batches of 3
    assert all(len(b) == 3 for _, b in got)
    a = np.concatenate([b for name, b in got if name == "A"])
    assert len(set(a.tolist())) == 9                              # one pass of A, no repeats
    assert len(list(stream_batches(streams, 3, np.random.default_rng(0), "min"))) == 2


def test_soft_labels_load_or_error(cache):
    c, _ = cache
    with pytest.raises(CacheError, match="no soft labels"):
        load_frame_data(c, None, soft_run="nobody")


def test_labels_without_per_task_splits_are_refused(tmp_path):
    """Labels written before per-task splits cannot be trusted per task: training and evaluation
    refuse them in one line that says how to rewrite them."""
    from emokd.cache import FeatureCache

    c = write_synthetic_cache(str(tmp_path / "c.zarr"), SyntheticSpec(n_videos=2, frames_per_video=10))
    vid = c.video_ids()[0]
    group = c.root[f"shards/{c.index.location(vid).shard}/labels"]
    group.attrs["items"] = {k: v for k, v in group.attrs["items"].items() if k != "splits"}
    with pytest.raises(CacheError, match=rf"labels of '{vid}' were written before per-task splits; "
                                         r"run `emokd cache relabel DATASET CACHE`"):
        load_frame_data(FeatureCache.open(c.url))
