"""The options every command shares, so that one convention holds everywhere (see cli/__init__.py).

- `config_option(Cls, "field", ...)`: a flag for a config field, its type, default and help taken
  from the dataclass (the default shows in --help; a flag left at its default never overrides a
  `--config` file: `config_overrides`).
- `device_option()`: `--device auto|cpu|cuda|cuda:N`, default auto.
- `run_option()`: `--run RUN`, the run folder of every command that reads or writes one.
- `add_verbosity(command)`: `-v/--verbose` and `-q/--quiet` on a command and all its subcommands,
  so they work before or after the subcommand's name.
- `deprecated(old, new)`: the one-line note an old spelling prints (kept for one version).
- `storage_options_option()`: `--storage-options KEY=VALUE` (repeatable, or EMOKD_STORAGE_OPTIONS),
  the fsspec options of a cache or source URLs on an object store, parsed to a dict.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import click
from click.core import ParameterSource

from emokd.cache.location import parse_storage_options
from emokd.config import DEVICE_HELP, check_device_name, field_default, field_docs
from emokd.errors import ConfigError
from emokd.logs import setup_logging


class DeviceType(click.ParamType):
    name = "device"

    def get_metavar(self, *args, **kwargs) -> str:
        return "[auto|cpu|cuda|cuda:N]"

    def convert(self, value, param, ctx):
        try:
            return check_device_name(str(value))
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


DEVICE = DeviceType()


def device_option(help: str = "Torch device", default: str = "auto"):
    return click.option("--device", type=DEVICE, default=default, show_default=True,
                        help=f"{help}: {DEVICE_HELP}.")


def run_option(help: str = "Run folder (made by `emokd train-from-cache --run`).", required: bool = True,
               exists: bool = True):
    kind = click.Path(exists=True, file_okay=False) if exists else click.Path(file_okay=False)
    return click.option("--run", "run", type=kind, required=required, metavar="RUN", help=help)


_CLICK_TYPES = {int: click.INT, float: click.FLOAT, str: click.STRING, bool: click.BOOL}


def _click_type(hint: Any):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return _CLICK_TYPES.get(hint, click.STRING)


def config_option(cls: type, name: str, *decls: str, **kwargs):
    """A click option for field `name` of config dataclass `cls`: `--name-with-dashes` unless
    `decls` are given; type, default and help from the dataclass (kwargs override them)."""
    hints = typing.get_type_hints(cls)
    if name not in hints:
        raise ConfigError(f"{cls.__name__} has no field {name!r}")
    default = field_default(cls, name)
    kwargs.setdefault("type", _click_type(hints[name]))
    doc = field_docs(cls).get(name, "").rstrip(".")
    kwargs.setdefault("help", doc[:1].upper() + doc[1:] + "." if doc else None)
    if default is not None and default != "":
        kwargs.setdefault("default", default)
        kwargs.setdefault("show_default", True)
    return click.option(*(decls or (f"--{name.replace('_', '-')}",)), name, **kwargs)


def config_overrides(ctx: click.Context, cls: type, values: dict) -> dict:
    """The flags the user gave (not left at their default) that are fields of `cls`."""
    fields = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items()
            if k in fields and v is not None and ctx.get_parameter_source(k) != ParameterSource.DEFAULT}


def _storage_options(ctx: click.Context, param: click.Parameter, value) -> dict | None:
    try:
        return parse_storage_options(value) if value else None
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def storage_options_option():
    """`--storage-options KEY=VALUE`, repeatable; None when not given (a config file's table then holds)."""
    return click.option(
        "--storage-options", "storage_options", multiple=True, metavar="KEY=VALUE", callback=_storage_options,
        envvar="EMOKD_STORAGE_OPTIONS", show_envvar=True,
        help="fsspec options of a cache (and source URLs) on an object store, repeatable: "
             "endpoint_url=http://10.0.0.9:9000, anon=true, client_kwargs.region_name=eu-west-1. Without them "
             "s3fs reads the AWS environment and files (AWS_ENDPOINT_URL, AWS_PROFILE, ~/.aws/config); "
             "credentials given here are never saved (docs/scaling.md#object-stores).")


def deprecated(old: str, new: str) -> None:
    """Say once that an old spelling was used and what replaces it (it keeps working for one version)."""
    click.echo(f"DeprecationWarning: {old} is deprecated; use {new} (the old spelling is accepted until the "
               "next minor version)", err=True)


def pick_run(run: str | None, legacy_run: str | None, command: str) -> str:
    """--run, or the old positional RUN (with a deprecation note); a usage error when neither."""
    if run and legacy_run and run != legacy_run:
        raise click.UsageError(f"two run folders given ({legacy_run} and --run {run}); give only --run")
    if run:
        return run
    if legacy_run:
        return legacy_run
    raise click.UsageError(f"Missing option '--run'. Usage: emokd {command} --run RUN ...")


# ---- -v / -q anywhere ---------------------------------------------------------------------------

def _verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value:
        return
    root = ctx.find_root()
    root.ensure_object(dict)
    if ctx.obj is None:
        ctx.obj = root.obj
    root.obj[param.name] = True
    setup_logging(verbose=root.obj.get("verbose", False), quiet=root.obj.get("quiet", False))


VERBOSE = ("-v", "--verbose", "Debug logging and full tracebacks on error.")
QUIET = ("-q", "--quiet", "Errors only on the console, no progress bars (the log files keep everything).")


def verbosity_options() -> list[click.Option]:
    return [click.Option([short, long], is_flag=True, expose_value=False, callback=_verbosity, help=text)
            for short, long, text in (VERBOSE, QUIET)]


def add_verbosity(command: click.Command) -> None:
    """Give `command` and every subcommand -v/-q (skipping those that already have them)."""
    names = {opt for p in command.params for opt in getattr(p, "opts", [])}
    if "-v" not in names and "--verbose" not in names:
        command.params.extend(verbosity_options())
    for sub in getattr(command, "commands", {}).values():
        add_verbosity(sub)
