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


@dataclass
class Typed:
    lr: float = 1e-4                   # learning rate
    epochs: int = 20                   # maximum epochs
    layers: tuple[int, ...] = (4, 2)   # widths
    name: str | None = None            # a name
    flag: bool = True


@pytest.mark.parametrize("suffix, text", [(".yaml", "lr: 1e-4\nepochs: '3'\n"), (".toml", 'lr = "1e-4"\nepochs = 3\n'),
                                          (".json", '{"lr": "1e-4", "epochs": 3.0}')])
def test_values_are_converted_to_their_field_type(tmp_path, suffix, text):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    cfg = load_config(Typed, path)
    assert cfg.lr == 0.0001 and type(cfg.lr) is float
    assert cfg.epochs == 3 and type(cfg.epochs) is int


def test_yaml_reads_1e_4_as_a_string_and_we_convert_it(tmp_path):
    import yaml

    assert yaml.safe_load("lr: 1e-4") == {"lr": "1e-4"}       # the trap: PyYAML follows YAML 1.1
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-4\nlayers: [8, '4']\n")
    cfg = load_config(Typed, path)
    assert cfg.lr == 1e-4 and cfg.layers == (8, 4)


@pytest.mark.parametrize("text, words", [
    ("lr: fast\n", r"c.yaml: lr: 'fast' is not a float"),
    ("epochs: 2.5\n", r"epochs: 2.5 is not an int"),
    ("epochs: true\n", r"epochs: True is not an int"),
    ("layers: 4\n", r"layers: 4 is not a list of int"),
    ("layers: [4, x]\n", r"layers\[1\]: 'x' is not an int"),
    ("flag: maybe\n", r"flag: 'maybe' is not a bool"),
    ("name: [a]\n", r"name: \['a'\] is not a str or null"),
])
def test_a_wrong_type_names_file_key_value_and_type(tmp_path, text, words):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_config(Typed, path)


def test_flags_are_checked_like_files():
    with pytest.raises(ConfigError, match=r"option epochs: 'x' is not an int"):
        load_config(Typed, overrides={"epochs": "x"})


def test_field_docs_come_from_line_comments():
    from emokd.config import field_docs

    assert field_docs(Typed) == {"lr": "learning rate", "epochs": "maximum epochs", "layers": "widths",
                                 "name": "a name", "flag": ""}


def test_describe_config_reads_back_to_the_same_config(tmp_path):
    from emokd.config import describe_config

    text = describe_config(Typed, "typed")
    assert "# lr (float): learning rate\nlr: 0.0001\n" in text
    assert "# layers (list of int): widths\nlayers: [4, 2]\n" in text
    assert "# name (str or null): a name\nname: null\n" in text
    path = tmp_path / "shown.yaml"
    path.write_text(text)
    assert load_config(Typed, path) == Typed()


def test_saved_config_keeps_provenance_apart(tmp_path):
    from emokd.config import made_by

    save_config(Typed(epochs=3), tmp_path / "config.yaml", provenance=made_by(dataset="/data/x"))
    saved = read_config_file(tmp_path / "config.yaml")
    assert "_made_by" not in saved and load_config(Typed, tmp_path / "config.yaml") == Typed(epochs=3)
    import yaml

    made = yaml.safe_load((tmp_path / "config.yaml").read_text())["_made_by"]
    assert made["dataset"] == "/data/x" and made["emokd_version"] and made["command"] and made["cwd"]
