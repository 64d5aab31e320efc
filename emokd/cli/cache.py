"""`emokd cache info | verify | relabel`: look into a feature cache, check it, rewrite its labels."""

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
    """Inspect, check and re-label a feature cache (a path or an fsspec URL)."""


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
    problems = cache.verify() + (stale_sources(cache) if sources else [])
    for problem in problems:
        click.echo(problem)
    failed = cache.failures()
    if failed:
        click.echo(f"note: {len(failed)} video(s) failed extraction and are not in the cache "
                   "(see `emokd cache info`)")
    n = len(cache.video_ids())
    if problems:
        click.echo(f"{len(problems)} defect(s) in {path} ({n} complete videos)", err=True)
        sys.exit(1)
    click.echo(f"ok: {n} complete video(s), no defect")


@cache_group.command("relabel")
@click.argument("dataset")
@click.argument("path", metavar="CACHE")
@dataset_root_option()
@storage_options_option()
def relabel_command(dataset: str, path: str, dataset_root: str | None, storage_options: dict | None) -> None:
    """Rewrite only the labels of the cached videos in CACHE from DATASET's annotation files.

    DATASET is a dataset root (Aff-Wild2 layout) or a manifest file, as for extract-features.
    Features are never touched; cached videos the index lacks keep their labels.
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


def _is_cache(path: str, storage_options: dict | None = None) -> bool:
    try:
        FeatureCache.open(path, storage_options=storage_options)
    except EmokdError:
        return False
    return True


COMMANDS = [cache_group]
