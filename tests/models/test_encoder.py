"""The encoder registry: one name per encoder, the deprecated old name, records that tell the truth."""

import warnings

import pytest

from emokd.errors import WeightsError
from emokd.models.encoder import ENCODERS, EXTERNAL, RENAMED_ENCODERS, build_encoder, encoder_class, list_encoders
from emokd.models.weights import ASSETS

PYEMOTION_SHA256 = "d2789940007ee6175130fefd3ed9a523a1afa4475fbdafbf64f2948db6c29537"


def test_registry_names_the_encoders():
    assert list_encoders() == ["fer_drer", "fer_pyemotion", "onnx", "soundnet8", "torchscript",
                               "emotiefflib_mbf", "emotiefflib_mobilevit", "hsemotion_enet_b0", "hsemotion_enet_b2"]
    with pytest.raises(WeightsError, match=r"unknown encoder 'vgg'; known: \['fer_drer', 'fer_pyemotion', "
                                           r"'onnx', 'soundnet8', 'torchscript', 'emotiefflib_mbf'"):
        build_encoder("vgg")


@pytest.mark.parametrize("name", sorted(set(ENCODERS) - set(EXTERNAL)))
def test_registry_name_is_the_class_name_module_and_asset(name):
    cls = encoder_class(name)
    assert cls.name == name and cls.kind in ("face", "audio")
    assert cls.__module__ == ENCODERS[name].partition(":")[0]
    if name != "fer_drer":  # fer_drer has no public weights, hence no asset
        assert name in ASSETS


@pytest.mark.parametrize("name", EXTERNAL)
def test_a_file_format_needs_the_users_file(name):
    assert encoder_class(name).file_format == name
    with pytest.raises(WeightsError, match=f"encoder '{name}' runs a file you bring: pass --audio-weights FILE"):
        build_encoder(name, kind="audio")
    with pytest.raises(WeightsError, match="'hsemotion_enet_b0' runs a file you bring: pass --face-weights FILE "
                                           r"\(one of enet_b0_8_best_vgaf.onnx"):
        build_encoder("hsemotion_enet_b0")


def test_a_builtin_encoder_keeps_its_kind_and_its_preprocessing():
    with pytest.raises(WeightsError, match="'soundnet8' makes audio features: it cannot be the face encoder"):
        build_encoder("soundnet8", kind="face")
    with pytest.raises(WeightsError, match="'fer_pyemotion' has its own fixed preprocessing"):
        build_encoder("fer_pyemotion", kind="face", input_spec={"size": 64})


def test_old_name_builds_the_same_encoder_and_names_the_new_one():
    current = build_encoder("fer_pyemotion")
    with pytest.warns(FutureWarning, match="encoder 'fer_default' is now called 'fer_pyemotion'"):
        old = build_encoder("fer_default")
    assert type(old) is type(current) and old.record() == current.record()
    assert old.record()["name"] == "fer_pyemotion" and old.record()["weights_sha256"] == PYEMOTION_SHA256
    assert RENAMED_ENCODERS == {"fer_default": "fer_pyemotion"}
    assert "fer_default" not in list_encoders()


def test_current_names_build_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert build_encoder("fer_pyemotion").name == "fer_pyemotion"


def test_soundnet_record_tells_its_window():
    default = build_encoder("soundnet8")
    assert default.record()["input_spec"] == {"sample_rate": 22050, "window_s": 10.0, "scale": 256.0}
    assert build_encoder("soundnet8", window_s=10).record() == default.record()
    longer = build_encoder("soundnet8", window_s=12.5)
    assert longer.record()["input_spec"]["window_s"] == 12.5
    assert {k: v for k, v in longer.record().items() if k != "input_spec"} == \
        {k: v for k, v in default.record().items() if k != "input_spec"}


def test_a_face_encoder_takes_no_window():
    with pytest.raises(WeightsError, match="'fer_pyemotion' is a face encoder: it takes no audio window_s"):
        build_encoder("fer_pyemotion", window_s=10.0)
