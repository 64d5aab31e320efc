"""Feature sets: several encoders for the same frames, each with its own fingerprint."""


import numpy as np
import pytest

from cache_support import AUDIO_SET, ENCODERS, FACE_SET, SETTINGS, video_values, write_packed, write_video
from emokd.cache import FeatureCache
from emokd.errors import CacheError
from safety_support import snapshot   # relative path -> sha256 of every file

STRONG = {"name": "hsemotion_b0", "kind": "face", "output_dim": 12, "layer": "pool",
          "input_spec": {"size": 224}, "weights_sha256": "d" * 64}


@pytest.fixture
def cache(tmp_path):
    cache = FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {"run": 1}, ENCODERS)
    write_packed(cache, "s~~0", {f"s/{i}": video_values(1 + i % 2, seed=i) for i in range(30)})
    write_video(cache, "long", video_values(500, seed=99))
    cache.write_labels("long", expr=[3] * 500, split="train")
    return cache


def _add_strong_set(cache) -> FeatureCache:
    again = FeatureCache.create(cache.url, {"crop_size": 224}, {"run": 2}, [STRONG])
    for key in again.shard_keys():
        writer = again.begin_sets(key, ["hsemotion_b0-pool"])
        n = writer.table.n_rows
        writer.write("face", 0, np.full((n, 12), 0.5, np.float16))
        writer.write("face_ok", 0, np.ones(n, bool))
        writer.commit()
    return again


def test_adding_a_second_face_set_leaves_every_existing_array_byte_identical(cache):
    before = snapshot(cache.url)
    again = _add_strong_set(cache)
    after = snapshot(cache.url)
    changed = sorted(k for k in before if before[k] != after.get(k))
    assert changed == ["zarr.json"]                     # only the root: the set registry
    added = sorted(set(after) - set(before))
    assert added and all("/hsemotion_b0-pool" in k for k in added)
    assert [fs.name for fs in again.feature_sets] == [FACE_SET, AUDIO_SET, "hsemotion_b0-pool"]
    assert again.feature_set("hsemotion_b0-pool").config == {"run": 2}
    assert again.verify() == []


def test_readers_pick_sets_by_name_default_the_first_of_each_kind(cache):
    again = _add_strong_set(cache)
    default = again.read_item("s/3")
    np.testing.assert_array_equal(default["face"], video_values(2, seed=3)["face"])
    strong = again.read_item("s/3", face="hsemotion_b0-pool")
    assert strong["face"].shape == (2, 12) and (strong["face"] == 0.5).all() and strong["face_ok"].all()
    np.testing.assert_array_equal(strong["audio"], default["audio"])
    assert again.choose_set("face").name == FACE_SET
    with pytest.raises(CacheError, match="holds audio features, not face"):
        again.read_item("s/3", face=AUDIO_SET)
    with pytest.raises(CacheError, match="no feature set 'nope'; it has fer_pyemotion-fc1 \\(face\\)"):
        again.read_item("s/3", face="nope")
    assert again.read_labels("long")["expr"].tolist() == [3] * 500


def test_a_set_registered_but_not_extracted_is_not_served(cache):
    again = FeatureCache.create(cache.url, {"crop_size": 224}, {}, [STRONG])
    assert again.item_ids(sets=["hsemotion_b0-pool"]) == []
    assert again.item_ids(sets=[FACE_SET]) == again.item_ids()
    with pytest.raises(CacheError, match="has no complete feature set 'hsemotion_b0-pool'"):
        again.read_item("long", face="hsemotion_b0-pool")
    writer = again.begin_sets("long", ["hsemotion_b0-pool"])
    writer.write("face", 0, np.ones((500, 12)))            # killed before its face_ok and commit
    again.refresh()
    assert not again.is_complete("long", sets=["hsemotion_b0-pool"])
    assert any("feature set 'hsemotion_b0-pool' incomplete" in p for p in again.verify())
    with pytest.raises(CacheError, match="already holds feature set 'fer_pyemotion-fc1'"):
        again.begin_sets("long", [FACE_SET])
    cache.begin_video("half", 3)
    again.refresh()
    with pytest.raises(CacheError, match="incomplete; it is redone whole"):
        again.begin_sets("half", ["hsemotion_b0-pool"])


def test_a_changed_setting_of_an_existing_set_is_refused_naming_it(cache):
    with pytest.raises(CacheError) as info:
        FeatureCache.create(cache.url, {**SETTINGS, "crop_size": 96}, {}, [ENCODERS[0]])
    assert f"{FACE_SET}: settings.crop_size: cache has 112, requested 96" in str(info.value)
    with pytest.raises(CacheError, match=f"would repeat the existing set '{FACE_SET}'"):
        FeatureCache.create(cache.url, SETTINGS, {}, [ENCODERS[0]], set_names={"face": "copy"})
    assert [fs.name for fs in FeatureCache.open(cache.url).feature_sets] == [FACE_SET, AUDIO_SET]
