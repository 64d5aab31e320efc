"""FeatureCache: create/open with the set fingerprints, one-item shards (videos), ids, interrupted writes."""

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cache_support import AUDIO_SET, DTYPES, ENCODERS, FACE_SET, SETTINGS, video_values, write_video
from emokd.cache import FeatureCache, decode_key, encode_key
from emokd.cache import writer as video_writer
from emokd.cache.fingerprint import compute_fingerprint, differences
from emokd.cache.sets import sets_from_records
from emokd.errors import CacheError


@pytest.fixture
def cache(tmp_path):
    return FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {"workers": 2, "batch_size": 64}, ENCODERS)


@pytest.mark.parametrize("video_id", ["118-30-640x480", "video5_left", "video5_right", "afew_va/001",
                                      "aff/batch2/x y", "__init__", ".hidden", "~tilde%", "é/ü", "zarr.json"])
def test_ids_round_trip_through_node_names(video_id):
    key = encode_key(video_id)
    assert "/" not in key and not key.startswith(("__", ".")) and decode_key(key) == video_id
    assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-~")


def test_escaping_is_exact_and_leaves_plain_ids_readable():
    assert encode_key("118-30-640x480_left") == "118-30-640x480_left"
    assert encode_key("afew_va/001") == "afew_va~2F001"
    assert encode_key("a~2Fb") == "a~7E2Fb"  # the escape character is itself escaped: no collision
    assert encode_key("a~2Fb") != encode_key("a/b")
    assert encode_key("zarr.json") == "zarr~2Ejson" and encode_key("zarr.jsonl") == "zarr.jsonl"


def test_an_item_named_like_a_metadata_document_never_touches_the_group_s_metadata(tmp_path):
    """A one-item shard of "zarr.json" was the node shards/zarr.json: beginning it deleted, on an
    object store, the shards group's own metadata (every item vanished)."""
    from emokd.cache import location

    for url in (tmp_path / "c.zarr", "memory://emokd-test-zarr-json/c.zarr"):
        cache = FeatureCache.create(url, SETTINGS, {}, ENCODERS)
        write_video(cache, "a", video_values(4, 0))
        write_video(cache, "zarr.json", video_values(5, 1))
        reader = FeatureCache.open(url)
        assert reader.video_ids() == ["a", "zarr.json"] and reader.n_frames("zarr.json") == 5
        with pytest.raises(CacheError, match="metadata"):
            location.remove_node(reader.root["shards"], "zarr.json")
        assert FeatureCache.open(url).video_ids() == ["a", "zarr.json"]


def test_written_video_reads_back_exactly_with_attrs(cache):
    values = video_values(50, seed=1)
    write_video(cache, "afew_va/001", values, attrs={"fps": 25.0, "source": {"path": "x.mp4", "size": 9}})
    reader = FeatureCache.open(cache.url)
    assert reader.video_ids() == ["afew_va/001"]
    got = reader.read_video("afew_va/001")
    assert set(got) == set(DTYPES) == set(values)
    for name, array in values.items():
        assert got[name].dtype == DTYPES[name], name
        np.testing.assert_array_equal(got[name], array)
    attrs = reader.video_attrs("afew_va/001")
    assert attrs["status"] == "complete" and attrs["n_frames"] == 50 and attrs["fps"] == 25.0
    assert attrs["source"] == {"path": "x.mp4", "size": 9} and attrs["video_id"] == "afew_va/001"
    assert attrs["shard"] == "afew_va~2F001" and attrs["first"] == 0
    assert reader.n_frames("afew_va/001") == 50
    face = reader.root[f"shards/afew_va~2F001/{FACE_SET}"]
    fingerprint = reader.feature_set(FACE_SET).fingerprint
    assert {k: v for k, v in face.attrs.items() if k not in ("started", "completed", "writer")} == {
        "set": FACE_SET, "kind": "face", "encoder": "fer_pyemotion", "layer": "fc1", "fingerprint": fingerprint,
        "status": "complete", "failed": []}
    assert face.metadata.dimension_names == ("frame", f"{FACE_SET}_dim") and face.compressors == ()
    assert reader.feature_dims == {FACE_SET: 8, AUDIO_SET: 5}
    assert reader.read_video("afew_va/001", [FACE_SET])[FACE_SET].shape == (50, 8)
    assert reader.config == {"workers": 2, "batch_size": 64}
    np.testing.assert_array_equal(reader.read_video("afew_va/001", ["face_ok"])["face_ok"], values["face_ok"])


def test_left_and_right_of_one_video_are_separate(cache):
    left, right = video_values(20, seed=2), video_values(20, seed=3)
    write_video(cache, "10-60-1280x720_left", left)
    write_video(cache, "10-60-1280x720_right", right)
    assert cache.video_ids() == ["10-60-1280x720_left", "10-60-1280x720_right"]
    np.testing.assert_array_equal(cache.read_video("10-60-1280x720_right")["face"], right["face"])
    np.testing.assert_array_equal(cache.read_video("10-60-1280x720_left")["face"], left["face"])


def test_unaligned_out_of_order_and_repeated_writes_land_exactly(cache, monkeypatch):
    """Small chunks (8 rows) and batches of 5 that straddle them, written backwards, one rewrite."""
    monkeypatch.setattr(video_writer, "CHUNK_TARGET_BYTES", 8 * 16)
    monkeypatch.setattr(video_writer, "MIN_CHUNK_ROWS", 8)
    values = video_values(43, seed=4)
    writer = cache.begin_video("v", 43)
    assert cache.root[f"shards/v/{FACE_SET}"].chunks == (8, 8)
    for start in reversed(range(0, 43, 5)):
        for name, array in values.items():
            writer.write(name, start, array[start:start + 5])
    assert not writer.shard.rows._buffers  # every chunk fully written was sent to the store
    writer.write("face", 3, np.full((10, 8), 2.5, np.float16))  # rows already sent: written through
    values["face"][3:13] = 2.5
    writer.commit()
    np.testing.assert_array_equal(cache.read_video("v")["face"], values["face"])


def test_commit_refuses_unwritten_rows_and_bad_writes(cache):
    values = video_values(10, seed=5)
    writer = cache.begin_video("v", 10)
    for name, array in values.items():
        writer.write(name, 0, array[:10] if name != "audio" else array[:6])
    with pytest.raises(CacheError, match=r"v: soundnet8-conv8: frames 6\.\.9 \(4 of 10\)"):
        writer.commit()
    assert cache.video_ids() == [] and cache.video_statuses() == {"v": "writing"}
    with pytest.raises(CacheError, match="item 'v', array 'fer_pyemotion-fc1': rows 8:12 outside 0:10"):
        writer.write("face", 8, values["face"][:4])
    with pytest.raises(CacheError, match=r"rows of shape \(7,\), expected \(8,\)"):
        writer.write("face", 0, np.zeros((2, 7)))
    with pytest.raises(CacheError, match="non-finite .* at frame 3"):
        writer.write("audio", 2, np.array([[0] * 5, [np.nan] * 5], np.float32))
    with pytest.raises(CacheError, match="non-finite"):  # beyond float16's range
        writer.write("audio", 6, np.full((1, 5), 1e6, np.float32))
    with pytest.raises(CacheError, match="no array 'labels'"):
        writer.write("labels", 0, np.zeros(3))
    np.testing.assert_array_equal(writer.missing_rows()[AUDIO_SET], "frames 6..9 (4 of 10)")


def test_begin_video_sizes_its_arrays_from_the_feature_sets(cache):
    writer = cache.begin_video("v", 5, {"fps": 30.0})
    group = cache.root["shards/v"]
    shapes = {name: (array.shape, str(array.dtype)) for name, array in group.arrays()}
    assert shapes == {FACE_SET: ((5, 8), "float16"), AUDIO_SET: ((5, 5), "float16"),
                      FACE_SET + ".ok": ((5,), "bool"), AUDIO_SET + ".ok": ((5,), "bool"), "pts": ((5,), "float64")}
    assert group[AUDIO_SET].attrs["encoder"] == "soundnet8" and group[AUDIO_SET].attrs["status"] == "writing"
    assert dict(group[AUDIO_SET + ".ok"].attrs) == {"set": AUDIO_SET, "kind": "audio"}
    assert dict(group["pts"].attrs) == {} and group["pts"].metadata.dimension_names == ("frame",)
    assert group.attrs["items"]["id"] == ["v"] and group.attrs["items"]["attrs"] == [{"fps": 30.0}]
    assert sorted(writer.missing_rows()) == sorted(shapes)
    with pytest.raises(CacheError, match="at least 1"):
        cache.begin_video("v", 0)
    with pytest.raises(TypeError):  # the arrays come from the cache: an old-style call is refused
        cache.begin_video("v", 5, {"face": (8, "float16")}, {"fps": 30.0})


def test_uncommitted_video_is_invisible_and_begin_again_starts_clean(cache):
    values = video_values(30, seed=6)
    writer = write_video(cache, "v", values, commit=False)
    assert not writer.committed
    reader = FeatureCache.open(cache.url)
    assert reader.video_ids() == [] and not reader.is_complete("v")
    assert reader.video_ids(include_incomplete=True) == ["v"]
    with pytest.raises(CacheError, match="incomplete"):
        reader.read_video("v")
    stale = cache.begin_video("w", 4)  # a stale group with an array the redo will not have
    video_writer.create_frame_array(stale.shard.group, "stale_only", 4, None, "float32")
    fresh = {k: v[:4] for k, v in video_values(4, seed=7).items()}
    write_video(cache, "w", fresh)
    assert set(cache.read_video("w")) == set(DTYPES) and "stale_only" not in cache.root["shards/w"]
    np.testing.assert_array_equal(cache.read_video("w")["audio"], fresh["audio"])
    with pytest.raises(CacheError, match="already complete"):
        cache.begin_video("w", 4)
    cache.begin_video("w", 4, replace=True)
    assert cache.video_ids() == []


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from cache_support import video_values
    from emokd.cache import FeatureCache
    cache = FeatureCache.open({url!r}, mode="r+")
    values = video_values(4000, seed=9)
    writer = cache.begin_video("killed/video", 4000)
    for name, array in values.items():
        writer.write(name, 0, array[:3000])
    print("written", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_killed_writer_leaves_an_invisible_video_that_a_rerun_replaces(cache, tmp_path):
    write_video(cache, "done", video_values(12, seed=10))
    script = KILLED_WRITER.format(tests=os.path.dirname(os.path.dirname(__file__)), url=cache.url)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9 and "written" in proc.stdout, proc.stderr
    reader = FeatureCache.open(cache.url)
    assert reader.video_ids() == ["done"]
    assert reader.info()["incomplete"] == ["killed~2Fvideo"]
    assert any("shard 'killed~2Fvideo': incomplete" in line for line in reader.verify())
    values = video_values(4000, seed=9)
    write_video(cache, "killed/video", values, batch=1000)
    reader.refresh()
    assert reader.video_ids() == ["done", "killed/video"] and reader.verify() == []
    np.testing.assert_array_equal(reader.read_video("killed/video")["face"], values["face"])


def test_same_settings_reopen_with_the_videos_and_float_int_spelling_is_equal(cache):
    write_video(cache, "v", video_values(5, seed=11))
    again = FeatureCache.create(cache.url, {**SETTINGS, "window_s": 10, "crop_size": 112.0},
                                {"workers": 8}, ENCODERS)
    assert again.fingerprint == cache.fingerprint and again.video_ids() == ["v"]
    assert again.config == {"workers": 2, "batch_size": 64}  # the config that made the cache


def test_changed_settings_of_a_set_are_refused_naming_each_with_both_values(cache):
    encoders = [dict(ENCODERS[0], weights_sha256="c" * 64, input_spec={"size": 64}), ENCODERS[1]]
    with pytest.raises(CacheError) as info:
        FeatureCache.create(cache.url, {**SETTINGS, "window_s": 5.0, "audio_mode": "per-window"}, {}, encoders)
    text = str(info.value)
    assert f"{AUDIO_SET}: settings.window_s: cache has 10, requested 5" in text
    assert f'{AUDIO_SET}: settings.audio_mode: cache has "shared", requested "per-window"' in text
    assert f'{FACE_SET}: encoder.weights_sha256: cache has "{"a" * 64}", requested "{"c" * 64}"' in text
    assert f"{FACE_SET}: encoder.input_spec.size: cache has 48, requested 64" in text
    assert "--overwrite" in text and "new cache path" in text and "another name" in text
    assert "crop_size" not in text and f"{AUDIO_SET}: encoder" not in text


def test_existing_answers_what_create_would_find_and_writes_nothing(cache, tmp_path):
    write_video(cache, "done", video_values(5, seed=15))
    write_video(cache, "half", video_values(5, seed=16), commit=False)
    before = sorted(p.relative_to(cache.url) for p in Path(cache.url).rglob("*"))
    sets = sets_from_records({**SETTINGS, "window_s": 10}, ENCODERS)
    assert FeatureCache.existing(cache.url, sets).item_ids() == ["done"]
    assert FeatureCache.existing(tmp_path / "nothing.zarr", sets) is None
    (tmp_path / "empty").mkdir()
    assert FeatureCache.existing(tmp_path / "empty", sets) is None
    changed = {**SETTINGS, "window_s": 5.0}
    with pytest.raises(CacheError) as dry:
        FeatureCache.existing(cache.url, sets_from_records(changed, ENCODERS))
    with pytest.raises(CacheError) as real:
        FeatureCache.create(cache.url, changed, {}, ENCODERS)
    assert str(dry.value) == str(real.value)  # the same refusal, in the same words
    assert "settings.window_s: cache has 10, requested 5" in str(dry.value)
    assert sorted(p.relative_to(cache.url) for p in Path(cache.url).rglob("*")) == before
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("mine")
    with pytest.raises(CacheError, match="exists and is not an emokd cache"):
        FeatureCache.existing(tmp_path / "folder", sets)


def test_fingerprint_covers_schema_version_and_new_settings():
    base = sets_from_records(SETTINGS, ENCODERS)[0]
    newer = dataclasses.replace(base, schema_version=base.schema_version + 1)
    assert base.fingerprint != newer.fingerprint
    assert differences(base.inputs(), newer.inputs()) == [
        f"schema_version: cache has {base.schema_version}, requested {base.schema_version + 1}"]
    added = sets_from_records({**SETTINGS, "detector": "mtcnn"}, ENCODERS)[0]
    assert differences(base.inputs(), added.inputs()) == ['settings.detector: cache has <not set>, requested "mtcnn"']
    reordered = sets_from_records(dict(reversed(list(SETTINGS.items()))), list(reversed(ENCODERS)))
    assert {s.name: s.fingerprint for s in reordered} == {
        s.name: s.fingerprint for s in sets_from_records(SETTINGS, ENCODERS)}
    assert compute_fingerprint(base.inputs()) == base.fingerprint


def test_overwrite_deletes_and_recreates(cache):
    write_video(cache, "v", video_values(5, seed=12))
    cache.record_failure("bad", "boom")
    fresh = FeatureCache.create(cache.url, {**SETTINGS, "window_s": 5.0}, {}, ENCODERS, overwrite=True)
    assert fresh.video_ids(include_incomplete=True) == [] and fresh.failures() == {}
    assert fresh.settings["window_s"] == 5


def test_open_refuses_what_is_not_a_cache(tmp_path, cache):
    with pytest.raises(CacheError, match="no feature cache there"):
        FeatureCache.open(tmp_path / "nothing.zarr")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("mine")
    with pytest.raises(CacheError, match="exists and is not an emokd cache"):
        FeatureCache.create(tmp_path / "folder", SETTINGS, {}, ENCODERS)
    with pytest.raises(CacheError, match="opened read-only"):
        FeatureCache.open(cache.url, mode="r").begin_video("v", 3)
    cache.root.attrs["schema_version"] = 0
    with pytest.raises(CacheError, match="schema version 0"):
        FeatureCache.open(cache.url)
    cache.root.attrs["schema_version"] = 1
    with pytest.raises(CacheError, match=r"schema version 1, this emokd reads version 2; convert it.*"
                                         r"`emokd cache migrate .*c\.zarr NEW_PATH`"):
        FeatureCache.open(cache.url)


@pytest.mark.filterwarnings("ignore:Object at v is not recognized")
def test_begin_video_clears_leftovers_that_zarr_does_not_see(cache):
    """A writer killed while deleting a stale group can leave chunk files without any zarr.json."""
    leftover = os.path.join(cache.url, "shards", "v", FACE_SET, "c", "0", "0")
    os.makedirs(os.path.dirname(leftover))
    with open(leftover, "wb") as handle:
        handle.write(b"stale bytes")
    assert cache.video_ids(include_incomplete=True) == []
    values = video_values(6, seed=13)
    values["face_ok"][:] = False  # all fill value: Zarr skips writing this chunk
    write_video(cache, "v", values)
    assert not os.path.exists(leftover) or open(leftover, "rb").read() != b"stale bytes"
    np.testing.assert_array_equal(cache.read_video("v")["face"], values["face"])
    assert cache.verify() == []


def test_a_writer_whose_video_was_restarted_cannot_commit(cache):
    """A task run twice (a worker thought dead): the older writer must not mark the newer one complete."""
    values = video_values(5, seed=14)
    older = write_video(cache, "v", values, commit=False)
    newer = write_video(cache, "v", values, commit=False)
    for name, array in values.items():  # the older writer goes on writing into the new group
        older.write(name, 0, array)
    with pytest.raises(CacheError, match="another writer restarted it"):
        older.commit()
    assert cache.video_ids() == []
    newer.commit()
    assert cache.video_ids() == ["v"]
    np.testing.assert_array_equal(cache.read_video("v")["audio"], values["audio"])


def test_a_creation_interrupted_before_its_attributes_is_created_again(tmp_path):
    import zarr
    skeleton = zarr.open_group(tmp_path / "c.zarr", mode="w")
    skeleton.create_group("shards")
    cache = FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {}, ENCODERS)
    assert cache.video_ids() == [] and cache.settings["crop_size"] == 112
    foreign = zarr.open_group(tmp_path / "other.zarr", mode="w")
    foreign.create_array("x", shape=(3,), dtype="int8")
    with pytest.raises(CacheError, match="a Zarr store, but not an emokd feature cache"):
        FeatureCache.create(tmp_path / "other.zarr", SETTINGS, {}, ENCODERS)


def test_plain_zarr_lists_the_store_without_a_warning(cache):
    """Nothing foreign inside the store: logs and configs live beside it (cache/sidecar.py)."""
    from emokd.cache.sidecar import run_files

    write_video(cache, "v", video_values(5, seed=17))
    cache.write_labels("v", expr=[1] * 5, split="train")
    cache.write_soft("teacher", "v", {"expr": np.zeros((5, 8), np.float32)})
    cache.record_failure("bad", "boom")
    log_file, config_file = run_files(cache.url, "extract")
    assert log_file.parent == Path(cache.url).with_name("c.zarr.emokd") and config_file.suffix == ".yaml"
    code = f"import zarr; print(zarr.open_group({cache.url!r}, mode='r').tree())"
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "fer_pyemotion-fc1" in proc.stdout and "labels" in proc.stdout
