"""`emokd index DATASET_ROOT [--out manifest.json]`: index a dataset and print what it holds."""

from __future__ import annotations

import json

import click

from emokd.cli.dataset import dataset_root_option, load_dataset


@click.command("index")
@click.argument("dataset", type=click.Path(exists=True))
@click.option("--out", type=click.Path(dir_okay=False), help="Write the manifest (JSON) to this file.")
@click.option("--no-probe", is_flag=True, help="Do not open the videos to count their frames.")
@click.option("--problems", "show_problems", is_flag=True, help="Print every problem found, one per line.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@dataset_root_option()
def index_command(dataset: str, out: str | None, no_probe: bool, show_problems: bool, as_json: bool,
                  dataset_root: str | None) -> None:
    """Index DATASET: an Aff-Wild2/ABAW folder, a generic CSV/JSON manifest, or a sources .yaml/.toml.

    Prints videos, frames, labelled frames per task and split, missing crops, videos without
    annotations and annotations without video. Every path in the manifest (--out) is absolute,
    with the dataset root recorded: --dataset-root re-roots a saved manifest after a move.
    """
    from emokd.index.summary import format_summary, summarize

    manifest = load_dataset(dataset, dataset_root, probe=not no_probe, echo=False)
    summary = summarize(manifest)
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))
    if show_problems:
        for line in manifest.problems:
            click.echo(f"  {line}")
    elif manifest.problems and not as_json:
        click.echo("  (--problems lists them)")
    if out:
        manifest.save(out)
        click.echo(f"manifest written to {out}")


COMMANDS = [index_command]
