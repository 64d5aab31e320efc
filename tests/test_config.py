from dataclasses import dataclass, field

import pytest

from emokd.config import load_config, save_config, read_config_file
from emokd.errors import ConfigError


@dataclass
class Inner:
    size: int = 3
    names: tuple = ("a", "b")


@dataclass
class Outer:
    lr: float = 1e-4
    inner: Inner = field(default_factory=Inner)


def test_file_then_flags_override_defaults(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("lr = 0.5\n[inner]\nsize = 7\n")
    cfg = load_config(Outer, path, {"inner": {"names": ["x"]}, "lr": None})
    assert cfg.lr == 0.5 and cfg.inner.size == 7 and cfg.inner.names == ("x",)


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  sise: 7\n")
    with pytest.raises(ConfigError, match="sise"):
        load_config(Outer, path)


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(Outer, overrides={"lr": 0.25})
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(Outer, tmp_path / "config.yaml") == cfg
    assert read_config_file(tmp_path / "config.yaml")["inner"]["names"] == ["a", "b"]
