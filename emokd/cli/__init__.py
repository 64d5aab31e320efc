"""The `emokd` command. Each submodule defines its click commands in COMMANDS; this file only wires them.

Errors a user can act on (EmokdError) print as one line; `-v` shows the traceback.
"""

import importlib
import logging
import sys

import click

from emokd.errors import EmokdError
from emokd.logs import setup_logging

SUBMODULES = ("weights", "index", "cache", "extract", "train", "inspect")


class _Main(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (EmokdError, FileNotFoundError) as exc:
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Main)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging and full tracebacks on error.")
@click.version_option(package_name="emokd")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """emokd: face videos -> reusable feature cache -> multitask emotion models (VA, EXPR, AU)."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    setup_logging(verbose=verbose)
    logging.captureWarnings(True)


for _name in SUBMODULES:
    _module = importlib.import_module(f"{__name__}.{_name}")
    for _command in getattr(_module, "COMMANDS", ()):
        main.add_command(_command)
