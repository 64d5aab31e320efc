"""What may stand where a cache is created, and --overwrite's replacement on local and object stores,
including the states a kill leaves behind (built here as a kill would leave them)."""

import os
import shutil
import uuid

import pytest
import zarr

from emokd.cache import FeatureCache
from emokd.cache import replace
from emokd.errors import CacheError
from cache_support import ENCODERS, SETTINGS, video_values, write_video

OTHER = {**SETTINGS, "window_s": 5.0}


def _cache_with_a_video(url):
    cache = FeatureCache.create(url, SETTINGS, {}, ENCODERS)
    write_video(cache, "a", video_values(12, 0))
    return cache


def test_what_is_at_a_path(tmp_path):
    assert replace.what_is_at(tmp_path / "none") == "absent"
    (tmp_path / "empty").mkdir()
    assert replace.what_is_at(tmp_path / "empty") == "empty"
    _cache_with_a_video(tmp_path / "c.zarr")
    assert replace.what_is_at(tmp_path / "c.zarr") == "cache"
    (tmp_path / "c.zarr" / "extract.log").write_text("emokd's own log\n")
    assert replace.what_is_at(tmp_path / "c.zarr") == "cache"
    # what zarr's atomic write leaves when a kill lands between writing and renaming zarr.json
    (tmp_path / "c.zarr" / f"zarr.{uuid.uuid4().hex}.partial").write_text('{"zarr_format": 3, "node_')
    assert replace.what_is_at(tmp_path / "c.zarr") == "cache"
    assert FeatureCache.open(tmp_path / "c.zarr").video_ids() == ["a"]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "clip.mp4").write_bytes(b"x")
    with pytest.raises(CacheError, match="not an emokd cache"):
        replace.what_is_at(tmp_path / "data")
    (tmp_path / "c.zarr" / "notes.txt").write_text("mine")
    with pytest.raises(CacheError, match=r"1 entry emokd did not make \(notes.txt\)"):
        replace.what_is_at(tmp_path / "c.zarr")
    (tmp_path / "c.zarr" / "notes.txt").unlink()
    (tmp_path / "c.zarr" / "zarr.mine.partial").write_text("not zarr's name")
    with pytest.raises(CacheError, match=r"1 entry emokd did not make \(zarr.mine.partial\)"):
        replace.what_is_at(tmp_path / "c.zarr")


def test_an_untagged_store_with_our_group_names_but_data_is_not_ours(tmp_path):
    """Only an empty skeleton (a creation killed before its attributes) is emokd's without the tag."""
    skeleton = zarr.open_group(tmp_path / "skeleton.zarr", mode="w", zarr_format=3)
    for name in replace.SUBGROUPS:
        skeleton.create_group(name)
    assert replace.what_is_at(tmp_path / "skeleton.zarr") == "cache"
    foreign = zarr.open_group(tmp_path / "foreign.zarr", mode="w", zarr_format=3)
    foreign.create_group("shards").create_group("x")
    foreign.create_array("videos/data", shape=(3,), dtype="f4")
    with pytest.raises(CacheError, match="not an emokd feature cache"):
        replace.what_is_at(tmp_path / "foreign.zarr")
    with pytest.raises(CacheError, match="not an emokd feature cache"):
        FeatureCache.create(tmp_path / "foreign.zarr", SETTINGS, {}, ENCODERS, overwrite=True)
    assert zarr.open_group(tmp_path / "foreign.zarr", mode="r")["videos/data"].shape == (3,)


def test_overwrite_replaces_and_leaves_nothing_beside(tmp_path):
    url = tmp_path / "c.zarr"
    _cache_with_a_video(url)
    new = FeatureCache.create(url, OTHER, {}, ENCODERS, overwrite=True)
    assert new.settings["window_s"] == 5 and new.video_ids() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.zarr"]
    with pytest.raises(CacheError, match="feature sets with other settings"):
        FeatureCache.create(url, SETTINGS, {}, ENCODERS)


def test_a_kill_between_the_two_renames_is_finished_by_the_next_run(tmp_path):
    """Where the system has no atomic exchange: old renamed aside, new not yet in place."""
    url = tmp_path / "c.zarr"
    _cache_with_a_video(url)
    token = uuid.uuid4().hex
    FeatureCache.create(tmp_path / f"c.zarr.emokd-new-{token}", OTHER, {}, ENCODERS)
    os.rename(url, tmp_path / f"c.zarr.emokd-old-{token}")
    replace.recover(url)
    assert FeatureCache.open(str(url)).settings["window_s"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.zarr"]


def test_a_store_being_deleted_after_the_exchange_is_never_put_back(tmp_path):
    """After the atomic exchange the old store lies at the staged name while it is deleted; a kill
    then, and the cache path gone, must not bring the half-deleted old store back."""
    url = tmp_path / "c.zarr"
    token = uuid.uuid4().hex
    _cache_with_a_video(tmp_path / f"c.zarr.emokd-new-{token}")
    replace.recover(url)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_leftovers_of_a_kill_are_removed_and_the_cache_kept(tmp_path):
    url = tmp_path / "c.zarr"
    _cache_with_a_video(url)
    token = uuid.uuid4().hex
    shutil.copytree(url, tmp_path / f"c.zarr.emokd-new-{token}")  # staged (or the swapped-out old one)
    (tmp_path / f"c.zarr.emokd-old-{uuid.uuid4().hex}").mkdir()
    (tmp_path / "c.zarr.emokd-new-notmine").mkdir()  # not a name emokd makes: kept
    cache = FeatureCache.create(url, SETTINGS, {}, ENCODERS)  # create runs recover first
    assert cache.video_ids() == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.zarr", "c.zarr.emokd-new-notmine"]


def test_object_store_overwrite_and_an_interrupted_one(tmp_path):
    url = f"memory://replace-{uuid.uuid4().hex}/c.zarr"
    _cache_with_a_video(url)
    new = FeatureCache.create(url, OTHER, {}, ENCODERS, overwrite=True)
    assert new.video_ids() == [] and new.settings["window_s"] == 5
    write_video(new, "b", video_values(12, 1))
    # killed after marking the store and deleting part of it: it no longer opens as a cache, and the
    # next run recreates it, with or without --overwrite
    root = zarr.open_group(url, mode="r+")
    root.attrs.put({replace.REPLACING: "token"})
    with pytest.raises(CacheError, match="not an emokd feature cache"):
        FeatureCache.open(url)
    again = FeatureCache.create(url, SETTINGS, {}, ENCODERS)
    assert again.video_ids() == [] and again.settings["window_s"] == 10
