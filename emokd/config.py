"""Configuration as dataclasses: defaults in code, overridden by a TOML/YAML file, then by flags.

Every value is converted to its field's type (YAML reads `1e-4` as a string: it becomes the float
0.0001) or refused with the key, the value and the type, before anything runs. Unknown keys are
refused with the known ones. Every output stores the resolved config (`save_config`), as timm saves
`args.yaml`. A field's help is its `metadata["help"]` or the comment at the end of its line
(`field_docs`); `describe_config` prints every field as a file that `--config` reads back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shlex
import sys
import time
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from emokd.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)

MADE_BY = "_made_by"
DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
DEVICE_HELP = "auto (cuda when available, else cpu), cpu, cuda or cuda:N"


def check_device_name(name: str) -> str:
    """`name` when it is auto, cpu, cuda or cuda:N (no torch needed), else ConfigError."""
    if not isinstance(name, str) or not DEVICE_RE.match(name):
        raise ConfigError(f"device: {name!r} is not one of auto, cpu, cuda, cuda:N")
    return name


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"{path}: unknown config format (use .toml, .yaml or .json)")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot parse config: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of keys, got {type(data).__name__}")
    data.pop(MADE_BY, None)  # provenance written by save_config, never a setting
    return data


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# ---- types --------------------------------------------------------------------------------------

def type_name(hint: Any) -> str:
    """A field type as a user reads it: int, float, str or null, list of int, table."""
    args = typing.get_args(hint)
    if _is_optional(hint):
        return " or ".join(type_name(a) for a in args if a is not type(None)) + " or null"
    origin = typing.get_origin(hint)
    if hint is tuple or hint is list or origin in (tuple, list):
        inner = [a for a in args if a is not Ellipsis]
        return f"list of {type_name(inner[0])}" if inner else "list"
    if hint is dict or origin is dict or dataclasses.is_dataclass(hint):
        return "table"
    return getattr(hint, "__name__", str(hint))


def _is_optional(hint: Any) -> bool:
    return (typing.get_origin(hint) in (typing.Union, types.UnionType)
            and type(None) in typing.get_args(hint))


def convert(value: Any, hint: Any, key: str) -> Any:
    """`value` as type `hint` (strings of numbers become numbers, lists become tuples where the
    field is a tuple), or ConfigError naming the key, the value and the expected type."""
    def refuse() -> typing.NoReturn:
        name = type_name(hint)
        article = "an" if name[0] in "aeiou" else "a"
        raise ConfigError(f"{key}: {value!r} is not {article} {name}")

    if _is_optional(hint):
        if value is None:
            return None
        others = [a for a in typing.get_args(hint) if a is not type(None)]
        try:
            return convert(value, others[0] if len(others) == 1 else typing.Union[tuple(others)], key)
        except ConfigError:
            refuse()
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return convert(value, option, key)
            except ConfigError:
                continue
        refuse()
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
            return value.strip().lower() in ("true", "yes")
        refuse()
    if hint is int:
        if isinstance(value, bool):
            refuse()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                refuse()
            if number.is_integer():
                return int(number)
        refuse()
    if hint is float:
        if isinstance(value, bool):
            refuse()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                refuse()
        refuse()
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        refuse()
    if hint is tuple or hint is list or origin in (tuple, list):
        if not isinstance(value, list | tuple):
            refuse()
        inner = [a for a in typing.get_args(hint) if a is not Ellipsis]
        items = [convert(v, inner[0], f"{key}[{i}]") for i, v in enumerate(value)] if inner else list(value)
        return tuple(items) if (hint is tuple or origin is tuple) else items
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            refuse()
        return value
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return from_dict(hint, value, key)
    return value


def _renamed(cls: type, data: dict, where: str) -> dict:
    """Keys renamed in `cls.RENAMED` (old -> new) moved to their new name, with a deprecation note."""
    renames = getattr(cls, "RENAMED", {})
    if not renames or not any(old in data for old in renames):
        return data
    out = dict(data)
    for old, new in renames.items():
        if old in out:
            value = out.pop(old)
            log.warning("config%s: key %r is deprecated, use %r (the old name is read until the next "
                        "minor version)", where, old, new)
            out.setdefault(new, value)
    return out


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build dataclass `cls` from a plain dict: unknown keys name the known ones, every value is
    converted to its field's type or refused with key, value and type."""
    if not isinstance(data, dict):
        raise ConfigError(f"config{where}: expected a table, got {type(data).__name__}")
    data = _renamed(cls, data, where)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"config{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    prefix = f"{where.lstrip('.')}." if where else ""
    kwargs = {name: convert(value, hints[name], f"{prefix}{name}") for name, value in data.items()}
    return cls(**kwargs)


def load_config(cls: type[T], path: str | Path | None = None, overrides: dict | None = None) -> T:
    """Defaults of `cls` <- file at `path` <- `overrides` (None values mean 'not given').

    Each layer is checked on its own, so an error names the file (or says it came from a flag)."""
    data = to_dict(cls())
    if path is not None:
        layer = read_config_file(path)
        _check_layer(cls, layer, f"{path}: ")
        data = _merge(data, _renamed(cls, layer, f" {path}"))
    if overrides:
        overrides = {k: v for k, v in overrides.items() if v is not None}
        _check_layer(cls, overrides, "option ")
        data = _merge(data, _renamed(cls, overrides, ""))
    return from_dict(cls, data)


def _check_layer(cls: type, layer: dict, source: str) -> None:
    """One layer's keys known (old names too) and its values of their field's type."""
    hints = typing.get_type_hints(cls)
    renames = getattr(cls, "RENAMED", {})
    known = sorted(f.name for f in dataclasses.fields(cls) if f.init)
    unknown = sorted(set(layer) - set(known) - set(renames))
    if unknown:
        raise ConfigError(f"{source}unknown key(s) {unknown}; known: {known}")
    for key, value in layer.items():
        name = renames.get(key, key)
        if value is not None or not _is_optional(hints[name]):
            try:
                convert(value, hints[name], name)
            except ConfigError as exc:
                raise ConfigError(f"{source}{exc}") from None


def to_dict(obj: Any) -> dict:
    """The dataclass as plain data; a field whose metadata has "redact" is passed through it (e.g.
    storage options lose their credentials), so saved configs never hold secrets."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    data = plain(dataclasses.asdict(obj))
    for f in dataclasses.fields(obj):
        if "redact" in f.metadata:
            data[f.name] = f.metadata["redact"](data[f.name])
    return data


def save_config(obj: Any, path: str | Path, provenance: dict | None = None) -> None:
    """The resolved config as YAML; `provenance` (see `emokd.logs.provenance`) goes under
    `_made_by:` (a key that reading the file back ignores)."""
    data = to_dict(obj)
    text = yaml.safe_dump(data, sort_keys=False)
    if provenance:
        text += yaml.safe_dump({MADE_BY: provenance}, sort_keys=False)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)



# ---- provenance ---------------------------------------------------------------------------------

_COMMAND_LINE: list[str] | None = None
# Names of storage options (fsspec/s3fs/gcsfs/adlfs) that hold credentials: never saved or logged.
SECRET_OPTIONS = frozenset({"key", "secret", "token", "password", "session_token", "account_key",
                            "sas_token", "client_secret", "credentials", "aws_access_key_id",
                            "aws_secret_access_key", "aws_session_token"})


def without_secrets(options: dict | None) -> dict:
    """Storage options without their credentials (at any depth): what configs and logs may keep."""
    out = {}
    for key, value in (options or {}).items():
        if str(key).lower() not in SECRET_OPTIONS:
            out[key] = without_secrets(value) if isinstance(value, dict) else value
    return out


def _redacted(argv: list[str]) -> list[str]:
    """The command line with the values of secret `--storage-options KEY=VALUE` replaced by ***."""
    out, after_flag = [], False
    for arg in argv:
        text = arg[len("--storage-options="):] if arg.startswith("--storage-options=") else arg
        if after_flag or text is not arg:
            key, sep, _value = text.partition("=")
            if sep and key.split(".")[-1].strip().lower() in SECRET_OPTIONS:
                arg = arg[: len(arg) - len(text)] + f"{key}=***"
        after_flag = arg == "--storage-options"
        out.append(arg)
    return out


def set_command_line(argv: list[str]) -> None:
    """Record the arguments of the running `emokd` command (the CLI calls this once)."""
    global _COMMAND_LINE
    _COMMAND_LINE = list(argv)


def made_by(**extra: Any) -> dict:
    """Who made an output: emokd version, the command line, the working directory, the time (UTC),
    plus `extra` (e.g. the dataset's absolute path). Stored with every run and cache."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        emokd_version = version("emokd")
    except PackageNotFoundError:
        emokd_version = "unknown"
    command = shlex.join(_redacted(["emokd", *_COMMAND_LINE] if _COMMAND_LINE is not None else sys.argv))
    return {"emokd_version": emokd_version, "command": command, "cwd": os.getcwd(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}


# ---- help ---------------------------------------------------------------------------------------

def field_docs(cls: type) -> dict[str, str]:
    """Each field's help: `metadata["help"]`, else the `# comment` ending its line in the source."""
    import inspect
    import io
    import tokenize

    comments: dict[str, str] = {}
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        source = ""
    pending: str | None = None      # the field whose line is being read
    last: str | None = None         # the field whose comment the next indented comment line continues
    for token in tokenize.generate_tokens(io.StringIO(source).readline) if source else ():
        if token.type == tokenize.NAME and token.start[1] == 4 and pending is None:
            pending, last = token.string, None
        elif token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            if pending is not None:
                comments[pending], last = text, pending
            elif last is not None and token.start[1] > 4 and token.line.lstrip().startswith("#"):
                comments[last] += " " + text
            else:
                last = None
        if token.type == tokenize.NEWLINE:
            pending = None
    return {f.name: f.metadata.get("help") or comments.get(f.name, "") for f in dataclasses.fields(cls)}


def field_default(cls: type, name: str) -> Any:
    """The default of field `name` of dataclass `cls` (factories called)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise ConfigError(f"{cls.__name__}.{name} has no default")
    raise ConfigError(f"{cls.__name__} has no field {name!r}")


def describe_config(cls: type, title: str, nested: dict[str, type] | None = None,
                    values: Any = None) -> str:
    """Every field of `cls` as YAML, each under a comment with its type and help: a file to edit
    and pass back with `--config`. `nested` maps a dict field (e.g. recipe_options) to the
    dataclass whose fields it holds; `values` (an instance) replaces the defaults."""
    lines = [f"# {title}", "# Every key with its type and default; edit and pass back with --config FILE.", ""]
    lines += _describe_fields(cls, values if values is not None else cls(), nested or {}, indent="")
    return "\n".join(lines) + "\n"


def _describe_fields(cls: type, obj: Any, nested: dict[str, type], indent: str) -> list[str]:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    lines = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        value = getattr(obj, f.name)
        note = f"{indent}# {f.name} ({type_name(hints[f.name])})" + (f": {docs[f.name]}" if docs[f.name] else "")
        lines.append(note)
        if f.name in nested and isinstance(value, dict):
            inner_cls = nested[f.name]
            inner = from_dict(inner_cls, value, f".{f.name}")
            lines.append(f"{indent}{f.name}:")
            lines += _describe_fields(inner_cls, inner, {}, indent + "  ")
            continue
        plain = to_dict(obj)[f.name] if dataclasses.is_dataclass(obj) else value
        dumped = yaml.safe_dump({f.name: plain}, sort_keys=False, default_flow_style=True, width=10_000)
        lines.append(indent + dumped.strip().removeprefix("{").removesuffix("}"))
    return lines
