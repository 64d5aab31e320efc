"""The `emokd` command. Each submodule defines its click commands in COMMANDS; this file only wires them.

One convention for every command (helpers for each are in cli/options.py):
- the run folder is `--run RUN` everywhere (training writes to it); `--out` names files that are
  not runs (a PNG, a manifest, a submission, a folder of CSVs);
- positional arguments in one order: the dataset, then the cache (`cache relabel DATASET CACHE`);
- `--device auto|cpu|cuda|cuda:N` (`device_option()`), default auto, on every command that runs a model;
- `-v/--verbose` and `-q/--quiet` work before or after the subcommand (added to every command here);
- every option shows its default in --help (config fields: `config_option(Cls, "field")`, whose
  default, type and help come from the config dataclass; `config_overrides` keeps only given flags);
- an old spelling keeps working for one version and prints a deprecation note (`deprecated`, or
  click's `deprecated=` on an option).

Errors a user can act on (EmokdError) print as one line and exit 2; `-v` shows the traceback.
"""

import importlib
import logging
import sys

import click

from emokd.cli.options import add_verbosity
from emokd.config import set_command_line
from emokd.errors import EmokdError, environment_error
from emokd.logs import setup_logging

SUBMODULES = ("weights", "index", "cache", "extract", "train", "probe", "inspect", "apply", "config")


class _Main(click.Group):
    def main(self, args=None, **kwargs):
        argv = list(sys.argv[1:] if args is None else args)
        set_command_line(argv)                       # stored with every run and cache
        setup_logging(verbose=False, quiet=False)    # -v / -q of this invocation only
        return super().main(args=argv, **kwargs)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (EmokdError, OSError) as exc:  # OSError: a missing file, a full disk, a permission
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            if type(exc) is OSError and environment_error(exc) is None:
                raise  # not one a user can act on: a bug to report, with its traceback
            click.echo(f"error: {_one_line(exc)}", err=True)
            sys.exit(2)


def _one_line(exc: Exception) -> str:
    """An OSError as "<file>: <what went wrong>; <what to do>"; any other error as its message."""
    if not isinstance(exc, OSError) or not exc.strerror:
        return str(exc)
    where = f"{exc.filename}: " if exc.filename else ""
    hint = "; make room (or fix the filesystem) and run the command again" if environment_error(exc) else ""
    return f"{where}{exc.strerror}{hint}"


@click.group(cls=_Main, context_settings={"show_default": True})
@click.version_option(package_name="emokd")
@click.pass_context
def main(ctx: click.Context) -> None:
    """emokd: face videos -> reusable feature cache -> multitask emotion models (VA, EXPR, AU).

    -v/--verbose and -q/--quiet may come before or after the command name.
    """
    ctx.ensure_object(dict)
    logging.captureWarnings(True)


for _name in SUBMODULES:
    _module = importlib.import_module(f"{__name__}.{_name}")
    for _command in getattr(_module, "COMMANDS", ()):
        main.add_command(_command)
add_verbosity(main)
