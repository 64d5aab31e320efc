"""`emokd train-from-cache`, `emokd evaluate`, `emokd predict`."""

from __future__ import annotations

import json

import click

from emokd.cli.options import DEVICE, config_option, config_overrides, deprecated, device_option, pick_run, run_option
from emokd.config import load_config
from emokd.train.config import TrainConfig

LEGACY_RUN = "the positional RUN"


@click.command("train-from-cache")
@config_option(TrainConfig, "cache", "--cache", help="Feature cache path or URL (from extract-features).")
@config_option(TrainConfig, "run", "--run", metavar="RUN",
               help="Run folder to create (or to continue with --resume), e.g. runs/teacher.")
@config_option(TrainConfig, "role", type=click.Choice(["teacher", "student"]))
@config_option(TrainConfig, "teacher", metavar="RUN",
               help="Teacher run folder (students): its soft labels in the cache are reused.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="TOML/YAML/JSON with TrainConfig keys (recipe_options: the recipe's keys; "
                   "`emokd config show train` prints them all); flags win.")
@config_option(TrainConfig, "recipe", help="Training recipe: jeong2022 or vu2021 (docs/vu2021.md).")
@config_option(TrainConfig, "device", type=DEVICE)
@config_option(TrainConfig, "epochs")
@config_option(TrainConfig, "patience")
@config_option(TrainConfig, "batch_size")
@config_option(TrainConfig, "lr")
@config_option(TrainConfig, "seed")
@config_option(TrainConfig, "window")
@config_option(TrainConfig, "stride")
@click.option("--resume", is_flag=True, help="Continue the run in --run from its last.pt (with its config.yaml).")
@click.option("--out", "legacy_out", metavar="RUN", deprecated="use --run RUN", help="Old name of --run.")
@click.pass_context
def train_from_cache(ctx, config_file, resume, legacy_out, **flags):
    """Train a teacher or a student from a feature cache (docs/training.md).

    Writes config.yaml, metrics.csv, best.pt, last.pt, curves.png and train.log to --run. A
    teacher's predictions for every cached frame are then stored in the cache's soft-label area,
    where any number of students (--role student --teacher RUN) reuse them.
    """
    from emokd.train.loop import train
    from emokd.train.runs import RunDir

    overrides = config_overrides(ctx, TrainConfig, flags)
    if legacy_out and not overrides.get("run"):
        overrides["run"] = legacy_out
    if resume and overrides.get("run") and config_file is None:
        saved = RunDir(overrides["run"]).file("config.yaml")
        config_file = str(saved) if saved.is_file() else None
    cfg = load_config(TrainConfig, config_file, overrides)
    summary = train(cfg, resume=resume)
    click.echo(json.dumps(summary, indent=2))


def _legacy_run_argument():
    return click.argument("legacy_run", required=False, metavar="[RUN]", deprecated="use --run RUN",
                          type=click.Path(exists=True, file_okay=False))


@click.command("evaluate")
@_legacy_run_argument()
@run_option(required=False)
@click.option("--cache", "cache", required=True, help="Feature cache path or URL.")
@click.option("--split", default="validation", help="Split to score.")
@click.option("--checkpoint", type=click.Choice(["best.pt", "last.pt"]), default="best.pt")
@device_option()
@click.option("--batch-size", type=int, default=2048, help="Frames per prediction batch.")
def evaluate(legacy_run, run, cache, split, checkpoint, device, batch_size):
    """Score --run on a split with its recipe's metrics over the whole set (jeong2022: CCC-V, CCC-A,
    F1-EXPR, F1-AU, P_MTL; vu2021: CCC-V, CCC-A, F1-EXPR, accuracy and its score).

    Prints them and saves RUN/eval_<split>.json.
    """
    from emokd.train.evaluate import evaluate_run
    from emokd.train.recipes.base import recipe_class

    run = pick_run(run, legacy_run, "evaluate")
    result = evaluate_run(run, cache, split, device, checkpoint, batch_size)
    for key in recipe_class(result["recipe"]).metric_keys:
        click.echo(f"{key:8s} {result[key]:.4f}")
    click.echo(f"saved {run}/eval_{split}.json ({result['n_frames']} frames)")


@click.command("predict")
@_legacy_run_argument()
@run_option(required=False)
@click.option("--cache", "cache", required=True, help="Feature cache path or URL holding the test videos.")
@click.option("--test-list", required=True, type=click.Path(exists=True, dir_okay=False),
              help="ABAW test list: a header, then <video>/NNNNN.jpg per line.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Submission file to write.")
@click.option("--checkpoint", type=click.Choice(["best.pt", "last.pt"]), default="best.pt")
@device_option()
@click.option("--batch-size", type=int, default=2048, help="Frames per prediction batch.")
def predict(legacy_run, run, cache, test_list, out, checkpoint, device, batch_size):
    """Write an ABAW MTL submission file (image,valence,arousal,expression,aus) for a test list.

    Frames without a usable face take the nearest earlier prediction. The run's recipe must
    predict all three tasks (jeong2022 does; vu2021 has no AU head).
    """
    from emokd.train.predict import write_submission

    run = pick_run(run, legacy_run, "predict")
    n = write_submission(run, cache, test_list, out, device, batch_size, checkpoint)
    click.echo(f"wrote {out} ({n} rows)")


COMMANDS = [train_from_cache, evaluate, predict]
