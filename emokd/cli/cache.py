"""`emokd cache info | verify | relabel | ls | export | migrate`: look into a feature cache, check it,
rewrite its labels, list and export its items, convert an older cache."""

from __future__ import annotations

import json
import sys

import click

from emokd.cache import FeatureCache
from emokd.cli.dataset import dataset_root_option, load_dataset
from emokd.cli.options import deprecated, storage_options_option
from emokd.errors import EmokdError


@click.group("cache")
def cache_group() -> None:
    """Inspect, check, re-label, list, export and migrate a feature cache (a path or an fsspec URL)."""


@cache_group.command("info")
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
@storage_options_option()
def info_command(path: str, as_json: bool, storage_options: dict | None) -> None:
    """Videos, frames, encoders and dims, labels, size on disk, incomplete and failed videos, config."""
    from emokd.cache.report import format_info

    info = FeatureCache.open(path, storage_options=storage_options).info()
    click.echo(json.dumps(info, indent=2, default=str) if as_json else format_info(info))


@cache_group.command("verify")
@click.argument("path")
@click.option("--sources", is_flag=True,
              help="Also compare each video's source file with the one it was extracted from (size, mtime, "
                   "hash of its first and last MiB; an object's size and ETag) and list the stale ones.")
@storage_options_option()
def verify_command(path: str, sources: bool, storage_options: dict | None) -> None:
    """Check shapes and dtypes against the encoder records, NaN/inf, label ranges and completeness.

    Exit status 1 when any defect (or, with --sources, any stale video) is found.
    """
    from emokd.cache.verify import stale_sources

    cache = FeatureCache.open(path, storage_options=storage_options)
    problems = cache.verify()
    problems += stale_sources(cache, cache.index) if sources else []   # the index verify read
    for problem in problems:
        click.echo(problem)
    failed = cache.failures()
    if failed:
        click.echo(f"note: {len(failed)} item(s) failed extraction and are not in the cache "
                   "(see `emokd cache info`)")
    index = cache.index          # as verify read it
    n, shards = len(index.ids()), sum(s.complete for s in index.shards.values())
    if problems:
        click.echo(f"{len(problems)} defect(s) in {path} ({n} complete items)", err=True)
        sys.exit(1)
    click.echo(f"ok: {n} complete item(s) in {shards} shard(s), no defect")


@cache_group.command("relabel")
@click.argument("dataset")
@click.argument("path", metavar="CACHE")
@dataset_root_option()
@storage_options_option()
def relabel_command(dataset: str, path: str, dataset_root: str | None, storage_options: dict | None) -> None:
    """Rewrite only the labels of the cached videos in CACHE from DATASET's annotation files.

    DATASET is a dataset root (Aff-Wild2 layout) or a manifest file, as for extract-features.
    Features are never touched; cached items the index lacks keep their labels.
    """
    from emokd.cache.lock import writer_lock
    from emokd.cache.relabel import relabel

    if _is_cache(dataset, storage_options) and not _is_cache(path, storage_options):   # the old order, CACHE DATASET
        deprecated("`emokd cache relabel CACHE DATASET`", "`emokd cache relabel DATASET CACHE`")
        dataset, path = path, dataset
    cache = FeatureCache.open(path, mode="r+", storage_options=storage_options)
    manifest = load_dataset(dataset, dataset_root)
    with writer_lock(path, storage_options, purpose="relabel"):
        report = relabel(cache, manifest.items)
    click.echo(report.line())
    if report.not_indexed:
        click.echo("not in the index: " + ", ".join(report.not_indexed[:20]))


@cache_group.command("ls")
@click.argument("path", metavar="CACHE")
@click.option("--status", default="all", show_default=True,
              type=click.Choice(["all", "complete", "failed", "writing"]), help="Only items with this status.")
@click.option("--dataset", help="Only items of this dataset.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (with shard and feature sets).")
@storage_options_option()
def ls_command(path: str, status: str, dataset: str | None, as_json: bool, storage_options: dict | None) -> None:
    """One line per item: id, dataset, frames, status (complete, failed, writing), source file."""
    from emokd.cache.export import format_rows, list_items

    rows = list_items(FeatureCache.open(path, storage_options=storage_options), status, dataset)
    for line in ([json.dumps(r) for r in rows] if as_json else format_rows(rows)):
        click.echo(line)


@cache_group.command("export")
@click.argument("path", metavar="CACHE")
@click.argument("out")
@click.option("--format", "fmt", type=click.Choice(["npz", "parquet"]), default="npz", show_default=True,
              help="npz: one file per item in the folder OUT; parquet: one table OUT, one row per frame.")
@click.option("--item", "items", multiple=True, help="An item id to export (repeatable; default: every item).")
@click.option("--dataset", help="Only items of this dataset.")
@click.option("--split", help="Only items with some task in this split (train, validation, test).")
@click.option("--face-features", help="Face feature set (default: the cache's first).")
@click.option("--audio-features", help="Audio feature set (default: the cache's first).")
@storage_options_option()
def export_command(path, out, fmt, items, dataset, split, face_features, audio_features, storage_options) -> None:
    """Write the features and labels of the chosen items to .npz files or one Parquet table
    (docs/cache_format.md#exporting-items)."""
    from emokd.cache.export import export_items

    cache = FeatureCache.open(path, storage_options=storage_options)
    report = export_items(cache, out, fmt, items, dataset, split, face_features, audio_features)
    click.echo(f"exported {report.items} item(s), {report.frames} frames, to {out} ({fmt})")


@cache_group.command("migrate")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="[NEW]", required=False)
@storage_options_option()
def migrate_command(old: str, new: str | None, storage_options: dict | None) -> None:
    """Convert a schema version 1 cache OLD into version 2 at NEW (OLD is only read), or in place
    without NEW; every feature is kept bit for bit. Run it again to resume a killed migration."""
    from emokd.cache.lock import writer_lock
    from emokd.cache.location import absolute_url
    from emokd.cache.migrate import migrate
    from emokd.config import made_by

    old = absolute_url(old)
    new = absolute_url(new) if new else None
    with writer_lock(new or old, storage_options, purpose="migration"):
        report = migrate(old, new, storage_options, made_by=made_by(migrated_from=old))
    for line in report.lines(new or old):
        click.echo(line)


def _is_cache(path: str, storage_options: dict | None = None) -> bool:
    try:
        FeatureCache.open(path, storage_options=storage_options)
    except EmokdError:
        return False
    return True


COMMANDS = [cache_group]
