"""schema.py: the one definition of a shard's arrays, derived from the feature sets."""

import numpy as np
import pytest

from cache_support import AUDIO_SET, ENCODERS, FACE_SET, SETTINGS
from emokd.cache.schema import FEATURE_DTYPE, feature_dims, shard_arrays
from emokd.cache.sets import default_set_name, make_set, sets_from_records
from emokd.errors import CacheError


def test_arrays_of_a_shard_are_the_documented_format():
    """The contract of docs/cache_format.md, written out once: names, order, dtypes, shapes, attributes."""
    sets = sets_from_records(SETTINGS, ENCODERS)
    arrays = shard_arrays(sets)
    assert [(name, spec.shape(10), spec.dtype) for name, spec in arrays.items()] == [
        ("pts", (10,), np.dtype("float64")),
        (FACE_SET, (10, 8), np.dtype("float16")), (FACE_SET + ".ok", (10,), np.dtype(bool)),
        (AUDIO_SET, (10, 5), np.dtype("float16")), (AUDIO_SET + ".ok", (10,), np.dtype(bool))]
    assert arrays[FACE_SET].attributes() == {"set": FACE_SET, "kind": "face", "encoder": "fer_pyemotion",
                                             "layer": "fc1", "fingerprint": sets[0].fingerprint}
    assert arrays[FACE_SET].dim_name == f"{FACE_SET}_dim"
    assert arrays["pts"].attributes() is None and not arrays["pts"].is_feature and arrays[AUDIO_SET].is_feature
    assert not arrays[AUDIO_SET + ".ok"].is_feature
    assert feature_dims(sets) == {FACE_SET: 8, AUDIO_SET: 5}
    assert FEATURE_DTYPE == np.float16
    assert list(shard_arrays(sets[:1], frames=False)) == [FACE_SET, FACE_SET + ".ok"]


def test_set_names_follow_the_encoder_and_layer_or_are_given():
    assert default_set_name({"name": "onnx:HSEmotion b0.onnx", "layer": "pool"}) == "onnx_HSEmotion_b0_onnx-pool"
    assert default_set_name({"name": "soundnet8", "layer": None}) == "soundnet8"
    named = sets_from_records(SETTINGS, ENCODERS, names={"face": "drer_affectnet"})
    assert [s.name for s in named] == ["drer_affectnet", AUDIO_SET]
    assert named[0].fingerprint == sets_from_records(SETTINGS, ENCODERS)[0].fingerprint  # the name is not hashed


def test_bad_set_names_and_records_are_refused():
    for bad in ("pts", "labels", "a.ok", "", "-x", "a/b"):
        with pytest.raises(CacheError, match="feature set name"):
            make_set(ENCODERS[0], {}, name=bad)
    with pytest.raises(CacheError, match="kind 'pts' is not one of"):
        make_set(dict(ENCODERS[1], kind="pts"), {})
    with pytest.raises(CacheError, match="same feature set"):
        sets_from_records({}, [ENCODERS[0], dict(ENCODERS[0])])
