"""Packed shards: many items in one group, read back by item; failed items; killed and resumed
writers; several processes writing different shards of one cache."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cache_support import (AUDIO_SET, ENCODERS, FACE_SET, SETTINGS, fill_item, run_processes, video_values,
                           write_packed, write_video)
from emokd.cache import FeatureCache, ItemSpec, fit_labels
from emokd.errors import CacheError

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def cache(tmp_path):
    return FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {}, ENCODERS)


def _mixed():
    """Stills (1 frame), short clips (20-60 frames) and long videos (about 3000 frames)."""
    stills = {f"affectnet/{i:04d}": video_values(1, seed=i) for i in range(40)}
    clips = {f"afew_va/{i:03d}": video_values(20 + 10 * i, seed=100 + i) for i in range(5)}
    videos = {f"aff/{i}": video_values(3000 + i, seed=200 + i) for i in range(2)}
    return stills, clips, videos


def test_stills_clips_and_long_videos_read_back_by_item(cache):
    stills, clips, videos = _mixed()
    labels = {i: fit_labels(i, 1, expr=[n % 8], split="train", dataset="affectnet")
              for n, i in enumerate(stills)}
    write_packed(cache, "affectnet~~0", dict(list(stills.items())[:25]), labels=labels)
    write_packed(cache, "affectnet~~1", dict(list(stills.items())[25:]), labels=labels)
    write_packed(cache, "afew_va~~0", clips)
    for vid, values in videos.items():
        write_video(cache, vid, values, batch=500)
    reader = FeatureCache.open(cache.url)
    everything = {**stills, **clips, **videos}
    assert reader.item_ids() == sorted(everything)
    for item_id, values in everything.items():
        got = reader.read_item(item_id)
        assert set(got) == set(values)
        for name, array in values.items():
            np.testing.assert_array_equal(got[name], array, err_msg=f"{item_id} {name}")
        assert reader.n_frames(item_id) == len(values["pts"])
    for n, item_id in enumerate(stills):
        assert reader.read_labels(item_id)["expr"].tolist() == [n % 8]
        assert reader.read_labels(item_id)["splits"]["EXPR"] == "train"
    assert reader.read_labels("afew_va/002")["split"] == "unlabelled"
    attrs = reader.item_attrs("afew_va/003")
    assert attrs["shard"] == "afew_va~~0" and attrs["first"] == 20 + 30 + 40 and attrs["fps"] == 25.0
    assert attrs["dataset"] == "afew_va"
    table = reader.root["shards/affectnet~~0"].attrs["items"]
    assert table["id"] == list(stills)[:25] and table["first"] == list(range(25))
    assert table["length"] == [1] * 25 and table["status"] == ["complete"] * 25
    assert reader.verify() == []
    info = reader.info()
    assert info["items"] == 47 and info["shards"] == 5 and info["packed_shards"] == 3
    # the shard order (the order training loads them in) is by key, whatever the store lists first
    assert reader.shard_keys() == sorted(["affectnet~~0", "affectnet~~1", "afew_va~~0", "aff~2F0", "aff~2F1"])


def test_a_shard_of_stills_costs_few_files_and_little_more_than_its_arrays(tmp_path):
    big = [dict(ENCODERS[0], output_dim=512), dict(ENCODERS[1], output_dim=1000)]
    cache = FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {}, big)
    stills = {f"s/{i:05d}": video_values(1, seed=i, face_dim=512, audio_dim=1000) for i in range(2048)}
    write_packed(cache, "s~~0", stills)
    shard = Path(cache.url) / "shards" / "s~~0"
    files = [p for p in shard.rglob("*") if p.is_file()]
    array_bytes = 2048 * (512 * 2 + 1000 * 2 + 2 + 8 + 2 * 4 + 1 + 12)   # features, masks, pts, labels
    assert len(files) / 2048 <= 0.01
    assert sum(p.stat().st_size for p in files) <= 1.2 * array_bytes


def test_a_long_video_pads_its_last_chunk_little(tmp_path):
    from emokd.cache.writer import chunk_rows

    assert [chunk_rows(n, 1024) for n in (100, 4096, 4097, 5000, 12_289)] == [100, 4096, 2049, 2500, 3073]
    big = [dict(ENCODERS[0], output_dim=512), dict(ENCODERS[1], output_dim=1000)]
    cache = FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {}, big)
    write_video(cache, "aff/long", video_values(5000, seed=1, face_dim=512, audio_dim=1000), batch=512)
    files = [p for p in (Path(cache.url) / "shards").rglob("*") if p.is_file()]
    array_bytes = 5000 * (512 * 2 + 1000 * 2 + 2 + 8)       # features, masks, pts
    assert sum(p.stat().st_size for p in files) <= 1.02 * array_bytes     # was 1.38 with chunks of 4,096 rows


def test_a_failed_item_is_invisible_its_neighbours_are_not(cache):
    items = {f"x/{i}": video_values(3, seed=i) for i in range(4)}
    writer = cache.begin_shard("x~~0", [ItemSpec(i, 3) for i in items])
    for item_id, values in items.items():
        if item_id == "x/2":
            part = writer.item(item_id)
            part.write("face", 0, values["face"][:1])
            part.fail("x/2.jpg: cannot identify image file")
            continue
        fill_item(writer.item(item_id), values)
    assert writer.commit() == ["x/0", "x/1", "x/3"]
    assert cache.item_ids() == ["x/0", "x/1", "x/3"] and not cache.is_complete("x/2")
    assert cache.item_records()["x/2"]["status"] == "failed"
    with pytest.raises(CacheError, match="item 'x/2' is failed"):
        cache.read_item("x/2")
    np.testing.assert_array_equal(cache.read_item("x/3")["audio"], items["x/3"]["audio"])
    assert cache.root["shards/x~~0"].attrs["failures"] == {"x/2": "x/2.jpg: cannot identify image file"}
    write_video(cache, "x/2", items["x/2"])     # a later run puts it in a shard of its own
    assert cache.item_ids() == ["x/0", "x/1", "x/2", "x/3"]
    assert cache.record_failure("x/2", "old") is False and "x/2" not in cache.failures()  # complete by now


def test_a_commit_writes_each_node_s_attributes_once(cache, monkeypatch):
    """A set's status and its list of failed items land in one write, so do a shard's status and its
    item table: a kill between two writes never leaves a failed item's rows marked complete."""
    from zarr.storage import LocalStore

    items = {f"x/{i}": video_values(3, seed=i) for i in range(3)}
    writer = cache.begin_shard("x~~0", [ItemSpec(i, 3) for i in items])
    for item_id, values in items.items():
        if item_id == "x/1":
            writer.item(item_id).fail("x/1.jpg: cannot identify image file")
        else:
            fill_item(writer.item(item_id), values)
    written, real = [], LocalStore.set

    async def recording(self, key, value):
        written.append(key)
        await real(self, key, value)

    monkeypatch.setattr(LocalStore, "set", recording)
    assert writer.commit() == ["x/0", "x/2"]
    for node in ("shards/x~~0", f"shards/x~~0/{FACE_SET}", f"shards/x~~0/{AUDIO_SET}"):
        assert written.count(f"{node}/zarr.json") == 1, node
    assert cache.root[f"shards/x~~0/{FACE_SET}"].attrs["failed"] == ["x/1"]
    assert cache.root["shards/x~~0"].attrs["status"] == "complete"


def test_writes_outside_an_item_and_duplicate_ids_are_refused(cache):
    writer = cache.begin_shard("y~~0", [ItemSpec("y/0", 2), ItemSpec("y/1", 3)])
    with pytest.raises(CacheError, match="item 'y/0', array 'fer_pyemotion-fc1': rows 1:3 outside 0:2"):
        writer.item("y/0").write("face", 1, np.zeros((2, 8)))
    with pytest.raises(CacheError, match="an item appears twice"):
        cache.begin_shard("y~~1", [ItemSpec("y/0", 2), ItemSpec("y/0", 2)])
    with pytest.raises(CacheError, match="shard key 'a/b'"):
        cache.begin_shard("a/b", [ItemSpec("y/0", 2)])


KILLED_SHARD = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from cache_support import fill_item, video_values
    from emokd.cache import FeatureCache, ItemSpec
    cache = FeatureCache.open({url!r}, mode="r+")
    items = {{f"s/{{i:04d}}": video_values(1 + i % 3, seed=i) for i in range(300)}}
    writer = cache.begin_shard("s~~0", [ItemSpec(i, len(v["pts"])) for i, v in items.items()])
    for n, (item_id, values) in enumerate(items.items()):
        fill_item(writer.item(item_id), values)
        if n == 200:
            writer.rows.flush()      # some chunks on disk, like a writer mid-way through a long shard
            print("written", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
""")


def _tree(url) -> dict[str, bytes]:
    root = Path(url) / "shards" / "s~~0"
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            text = p.read_bytes()
            if p.name == "zarr.json":   # times and writer tokens differ between two writes
                import json
                doc = json.loads(text)
                for key in ("started", "completed", "writer", "written"):
                    doc.get("attributes", {}).pop(key, None)
                text = json.dumps(doc, sort_keys=True).encode()
            out[str(p.relative_to(root))] = text
    return out


def test_a_shard_killed_mid_write_and_resumed_equals_an_uninterrupted_one(tmp_path):
    killed = FeatureCache.create(tmp_path / "killed.zarr", SETTINGS, {}, ENCODERS)
    proc = subprocess.run([sys.executable, "-c", KILLED_SHARD.format(tests=TESTS, url=killed.url)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9 and "written" in proc.stdout, proc.stderr
    killed.refresh()
    assert killed.item_ids() == [] and killed.info()["incomplete"] == ["s~~0"]
    items = {f"s/{i:04d}": video_values(1 + i % 3, seed=i) for i in range(300)}
    write_packed(killed, "s~~0", items)                            # the rerun redoes the shard whole
    clean = FeatureCache.create(tmp_path / "clean.zarr", SETTINGS, {}, ENCODERS)
    write_packed(clean, "s~~0", items)
    assert _tree(killed.url) == _tree(clean.url)
    assert killed.item_ids() == sorted(items) and killed.verify() == []


def _shard_writer(url: str, shards: list[int]) -> None:
    sys.path.insert(0, TESTS)
    cache = FeatureCache.open(url, mode="r+")
    for k in shards:
        write_packed(cache, f"p~~{k}", {f"p/{k}/{i}": video_values(1 + i % 4, seed=1000 * k + i) for i in range(150)})
        cache.record_failure(f"failed/{k}", f"error {k}")


def test_two_processes_write_different_shards_of_one_cache_with_no_loss(tmp_path):
    url = str(tmp_path / "c.zarr")
    FeatureCache.create(url, SETTINGS, {}, ENCODERS)
    run_processes(_shard_writer, [(url, list(range(k, 8, 2))) for k in range(2)])
    cache = FeatureCache.open(url)
    assert len(cache.item_ids()) == 8 * 150 and cache.verify() == []
    assert cache.failures() == {f"failed/{k}": f"error {k}" for k in range(8)}
    names = {"face": FACE_SET, "audio": AUDIO_SET, "face_ok": FACE_SET + ".ok", "audio_ok": AUDIO_SET + ".ok",
             "pts": "pts"}
    for k in range(8):
        got = cache.read_shard(f"p~~{k}", list(names.values()))
        expected = [video_values(1 + i % 4, seed=1000 * k + i) for i in range(150)]
        for short, stored in names.items():
            np.testing.assert_array_equal(got[stored], np.concatenate([e[short] for e in expected]),
                                          err_msg=f"p~~{k} {short}")
    assert cache.read_item("p/3/7")["face"].shape == (4, 8)


def test_a_commit_clears_its_items_failures_and_their_leftovers_only(tmp_path):
    """One listing of the failure log per commit: the committed items' entries go (also what a
    killed record left: a folder without zarr.json), every other entry stays."""
    url = tmp_path / "c.zarr"
    cache = FeatureCache.create(url, SETTINGS, {}, ENCODERS)
    cache.record_failure("s/0001", "boom")
    cache.record_failure("elsewhere", "kept")
    leftover = url / "failures" / "s~2F0002"
    leftover.mkdir()
    (leftover / "half-written").write_text("x")
    write_packed(cache, "s~~0", {f"s/{i:04d}": video_values(1, seed=i) for i in range(4)})
    assert FeatureCache.open(url).failures() == {"elsewhere": "kept"}
    assert not leftover.exists() and (url / "failures" / "elsewhere" / "zarr.json").is_file()


def test_only_the_writer_a_shard_still_belongs_to_may_discard_it(cache):
    """A task whose items all failed deletes its shard only while the shard is still its own: a
    second run of the same task (one restarted it meanwhile) keeps its shard."""
    first = write_packed(cache, "s~~0", {"s/0": video_values(2, 0)}, commit=False)
    assert first.still_mine()
    second = cache.begin_shard("s~~0", [ItemSpec("s/0", 2)], replace=True)
    assert not first.still_mine() and second.still_mine()
    fill_item(second.item("s/0"), video_values(2, 0))
    second.commit()
    assert not second.still_mine() and not first.still_mine()
    cache.delete_shard("s~~0")
    assert not first.still_mine()       # gone: nothing of its own to delete
