"""`emokd config show extract|train [--recipe R]`: every setting as a file to edit and pass back."""

from __future__ import annotations

import click


@click.group("config")
def config_group() -> None:
    """The settings of extract-features and train-from-cache, as editable files."""


@config_group.command("show")
@click.argument("command", type=click.Choice(["extract", "train"]))
@click.option("--recipe", default="jeong2022",
              help="train: the recipe whose options fill recipe_options (jeong2022 or vu2021).")
def show_command(command: str, recipe: str) -> None:
    """Print every field of COMMAND's config with its type, default and help, as YAML that
    `emokd extract-features --config FILE` / `emokd train-from-cache --config FILE` read back."""
    from emokd.config import describe_config, to_dict

    if command == "extract":
        from emokd.extract.config import ExtractConfig

        click.echo(describe_config(ExtractConfig, "emokd extract-features --config FILE"), nl=False)
        return
    from emokd.train.config import TrainConfig
    from emokd.train.recipes.base import recipe_class

    options_cls = recipe_class(recipe).Config
    values = TrainConfig(recipe=recipe, recipe_options=to_dict(options_cls()))
    click.echo(describe_config(TrainConfig, f"emokd train-from-cache --config FILE (recipe {recipe})",
                               nested={"recipe_options": options_cls}, values=values), nl=False)


COMMANDS = [config_group]
