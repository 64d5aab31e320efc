"""schema.py: the one definition of a video's arrays, derived from the encoder records."""

import numpy as np
import pytest

from cache_support import ENCODERS
from emokd.cache.schema import FEATURE_DTYPE, FRAME_ARRAYS, feature_dims, video_arrays
from emokd.errors import CacheError


def test_arrays_of_a_video_are_the_documented_format():
    """The contract of docs/cache_format.md, written out once: names, order, dtypes, shapes, attributes."""
    arrays = video_arrays(ENCODERS)
    assert [(name, spec.shape(10), spec.dtype) for name, spec in arrays.items()] == [
        ("face", (10, 8), np.dtype("float16")), ("audio", (10, 5), np.dtype("float16")),
        ("face_ok", (10,), np.dtype(bool)), ("audio_ok", (10,), np.dtype(bool)),
        ("pts", (10,), np.dtype("float64"))]
    assert arrays["face"].attributes() == {"encoder": "fer_pyemotion", "layer": "fc1"}
    assert arrays["pts"].attributes() is None and not arrays["pts"].is_feature and arrays["audio"].is_feature
    assert feature_dims(ENCODERS) == {"face": 8, "audio": 5}
    assert FEATURE_DTYPE == np.float16 and list(FRAME_ARRAYS) == ["face_ok", "audio_ok", "pts"]


def test_feature_arrays_follow_the_encoder_records():
    """Named by `array` when a record has one, else by `kind`; in the records' order; width output_dim."""
    records = [dict(ENCODERS[1], output_dim=1000), dict(ENCODERS[0], array="face_fc2", output_dim=256),
               dict(ENCODERS[0])]
    arrays = video_arrays(records)
    assert list(arrays) == ["audio", "face_fc2", "face", "face_ok", "audio_ok", "pts"]
    assert arrays["audio"].dim == 1000 and arrays["face_fc2"].dim == 256 and arrays["face"].dim == 8


def test_an_encoder_may_not_take_a_frame_array_name(tmp_path):
    from emokd.cache import FeatureCache

    clash = [ENCODERS[0], dict(ENCODERS[1], kind="pts")]
    with pytest.raises(CacheError, match="would write the cache array 'pts'"):
        video_arrays(clash)
    with pytest.raises(CacheError, match="would write the cache array 'pts'"):
        FeatureCache.create(tmp_path / "c.zarr", {}, {}, clash)
    assert not (tmp_path / "c.zarr").exists()
