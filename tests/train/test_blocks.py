"""Training beyond memory: block mode gives the batches of in-memory mode, reads blocks in order,
and says so; items of packed shards load like videos."""

import logging

import numpy as np
import pytest
import torch

from emokd.cache import FeatureCache, ItemSpec, fit_labels
from emokd.train import blocks
from emokd.train.data import load_frame_data
from emokd.train.streams import proportional_rounds


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """Stills packed in shards of 50, short clips packed, long videos alone; some frames without a face."""
    encoders = [{"name": "f", "kind": "face", "output_dim": 6, "layer": "x", "input_spec": {}, "weights_sha256": "0"},
                {"name": "a", "kind": "audio", "output_dim": 3, "layer": "x", "input_spec": {}, "weights_sha256": "1"}]
    c = FeatureCache.create(str(tmp_path_factory.mktemp("b") / "c.zarr"), {}, {}, encoders)
    rng = np.random.default_rng(0)
    groups = [("still~~%d" % k, [(f"still/{k}_{i}", 1) for i in range(50)]) for k in range(3)]
    groups.append(("clip~~0", [(f"clip/{i}", 15 + i) for i in range(6)]))
    groups += [(f"video{v}", [(f"video/{v}", 700 + 50 * v)]) for v in range(3)]
    for key, items in groups:
        writer = c.begin_shard(key, [ItemSpec(i, n, dataset=i.split("/")[0]) for i, n in items])
        for item_id, n in items:
            part = writer.item(item_id)
            part.write("face", 0, rng.standard_normal((n, 6)).astype(np.float16))
            part.write("face_ok", 0, rng.random(n) > 0.3)
            part.write("audio", 0, rng.standard_normal((n, 3)).astype(np.float16))
            part.write("audio_ok", 0, np.ones(n, bool))
            part.write("pts", 0, np.arange(n) / 25.0)
            part.write_labels(fit_labels(item_id, n, va=np.clip(rng.standard_normal((n, 2)), -1, 1),
                                         expr=rng.integers(0, 8, n), split="train", dataset=item_id.split("/")[0]))
        writer.commit()
    return c


def test_block_mode_gives_the_batches_of_memory_mode(cache, caplog, monkeypatch):
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 128 * 18)      # 128 frames a block: long videos span blocks
    memory = load_frame_data(cache, ["train"], window=4, stride=5)
    with caplog.at_level(logging.WARNING):
        blocked = load_frame_data(cache, ["train"], window=4, stride=5, max_memory="1K")
    assert memory.mode == "memory" and blocked.mode == "blocks"
    assert "training reads shard-sized blocks in a shuffled block order" in caplog.text
    assert blocked.video_ids == memory.video_ids and blocked.dims == memory.dims
    for idx in (np.arange(memory.n_frames), np.random.default_rng(1).permutation(memory.n_frames)[:300]):
        a, b = memory.batch(idx), blocked.batch(idx)
        for key in ("face", "face_mask", "audio", "va", "va_mask", "expr", "expr_mask", "au_mask"):
            assert torch.equal(a[key], b[key]), key
    # the face of a no-face frame is that of the nearest earlier face frame of its item, by hand
    ok, face = cache.read_item("video/1")["face_ok"], cache.read_item("video/1")["face"]
    start = int(memory.video_start[memory.video_ids.index("video/1")])
    for k in (0, 1, 333, 749):
        j = k
        while j >= 0 and not ok[j]:
            j -= 1
        want = face[j] if j >= 0 else np.zeros(6, np.float16)
        assert np.array_equal(blocked.batch(np.array([start + k]))["face"][0, -1].numpy(), want.astype(np.float32))


def test_block_order_reads_each_block_about_once_per_stream(cache, monkeypatch):
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 128 * 18)
    monkeypatch.setattr(blocks, "MIN_RESIDENT_BLOCKS", 2)
    data = load_frame_data(cache, ["train"], window=1, stride=1, max_memory="1K")
    n_blocks = len(data._blocks)
    idx = data.labelled("train", "EXPR", require_face=True)
    order = data.permute(idx, np.random.default_rng(0))
    assert sorted(order.tolist()) == sorted(idx.tolist())
    assert (np.diff(data.block_of(order)) != 0).sum() == n_blocks - 1   # each block one run
    for r in proportional_rounds({"EXPR": idx}, 32, np.random.default_rng(0), permute=data.permute):
        for _, batch in r:
            data.batch(batch)
    assert data.block_reads <= n_blocks + len(idx) // 32          # about once, not once per batch
