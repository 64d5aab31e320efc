"""The DATASET argument of every command that reads one: indexed once, its problems summarised once."""

from __future__ import annotations

import click

PROBLEMS_SHOWN = 3


def dataset_root_option():
    return click.option("--dataset-root", type=click.Path(exists=True, file_okay=False), default=None,
                        help="Where the dataset is now, when DATASET is a saved manifest made before the "
                             "dataset moved: paths under its recorded root are read under this folder.")


def problems_line(dataset: str, problems: list[str], shown: int = PROBLEMS_SHOWN) -> str:
    """One line: how many problems the index found, the first few, and where to see all."""
    first = "; ".join(problems[:shown]) + ("; ..." if len(problems) > shown else "")
    return (f"index: {len(problems)} problem(s) in {dataset}: {first} "
            f"(`emokd index {dataset} --problems` lists them all)")


def load_dataset(dataset: str, dataset_root: str | None = None, probe: bool = True, echo: bool = True):
    """The Manifest of DATASET; its problems, if any, summarised in one line on stderr."""
    from emokd.index.dataset import index_dataset

    manifest = index_dataset(dataset, probe=probe, dataset_root=dataset_root)
    if echo and manifest.problems:
        click.echo(problems_line(dataset, manifest.problems), err=True)
    return manifest
