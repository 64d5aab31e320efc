"""`emokd probe CACHE`: linear probes of the cache's features per task (emokd/train/probe.py)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import click

from emokd.cli.options import config_option, config_overrides, storage_options_option
from emokd.config import load_config, save_config
from emokd.train.probe import COLUMNS, ProbeConfig


def _cell(value) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def format_table(rows: list[dict]) -> str:
    shown = ("features", "dim", "ccc_v", "ccc_a", "f1_expr", "f1_au", "p_mtl", "n_val_va", "n_val_expr",
             "n_val_au", "seconds")
    table = [shown] + [tuple(_cell(row.get(k, "")) for k in shown) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(shown))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table)


@click.command("probe")
@click.argument("cache_url", metavar="CACHE")
@click.option("--out", type=click.Path(dir_okay=False),
              help="CSV file of the report (default: <cache name>_probe.csv in the current folder); the "
                   "resolved settings go beside it as <name>.yaml.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="TOML/YAML/JSON file with ProbeConfig fields; flags override it.")
@config_option(ProbeConfig, "face_features")
@config_option(ProbeConfig, "audio_features")
@config_option(ProbeConfig, "max_train")
@config_option(ProbeConfig, "max_validation")
@config_option(ProbeConfig, "ridge_alpha")
@config_option(ProbeConfig, "logistic_c", "--logistic-c")
@config_option(ProbeConfig, "seed")
@config_option(ProbeConfig, "threads")
@storage_options_option()
@click.pass_context
def probe(ctx, cache_url, out, config_file, storage_options, **flags):
    """Linear probes of CACHE's features on its train/validation splits, per task and feature set.

    Ridge regression -> CCC for valence/arousal, logistic regression -> macro F1 for the 8
    expressions, one logistic regression per AU -> mean F1; face, audio and both. Tells which
    encoder to train on before any training (docs/encoders.md, "emokd probe").
    """
    from emokd.cache import FeatureCache
    from emokd.train.probe import run_probe

    cfg = load_config(ProbeConfig, config_file, config_overrides(ctx, ProbeConfig, flags))
    cache = FeatureCache.open(cache_url, storage_options=storage_options)
    rows = run_probe(cache, cfg, progress=lambda name: click.echo(f"probed {name}", err=True))
    click.echo(format_table(rows))
    out = Path(out) if out else Path(f"{Path(str(cache_url).rstrip('/')).stem or 'cache'}_probe.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    with open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: row.get(k, "") for k in COLUMNS} for row in rows)
    partial.replace(out)  # never a half-written report
    save_config(cfg, out.with_suffix(".yaml"))
    click.echo(f"wrote {out} and {out.with_suffix('.yaml')} (cache {cache_url}, fingerprint {cache.fingerprint[:12]})")


COMMANDS = [probe]
