"""`emokd train-from-cache`, `emokd evaluate`, `emokd predict`."""

from __future__ import annotations

import json

import click

from emokd.config import load_config

DEVICES = click.Choice(["auto", "cpu", "cuda"])


@click.command("train-from-cache")
@click.option("--cache", "cache", help="Feature cache path or URL (from extract-features).")
@click.option("--role", type=click.Choice(["teacher", "student"]), help="teacher (default) or student.")
@click.option("--teacher", help="Teacher run directory (students): its soft labels in the cache are reused.")
@click.option("--out", help="Run directory to create, e.g. runs/teacher1.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML/YAML/JSON with TrainConfig keys (recipe_options: the recipe's keys); flags win.")
@click.option("--recipe", help="Training recipe: jeong2022 (default) or vu2021 (docs/vu2021.md).")
@click.option("--device", type=DEVICES, help="auto (default: cuda when available), cpu or cuda.")
@click.option("--epochs", type=int, help="Maximum epochs (default 20; early stop after --patience).")
@click.option("--patience", type=int, help="Epochs without validation improvement before stopping (default 5).")
@click.option("--batch-size", type=int, help="Samples per task batch (default 256).")
@click.option("--lr", type=float, help="Adam learning rate (default 1e-4).")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--window", type=int, help="Image-embedding window length in frames (default 6).")
@click.option("--stride", type=int, help="Frames between window positions (default 10).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
def train_from_cache(config_file, resume, **flags):
    """Train a teacher or a student from a feature cache (docs/training.md).

    Writes config.yaml, metrics.csv, best.pt, last.pt, curves.png and train.log to --out. A
    teacher's predictions for every cached frame are then stored in the cache's soft-label area,
    where any number of students (--role student --teacher RUN) reuse them.
    """
    from emokd.train.loop import train
    from emokd.train.runs import RunDir
    from emokd.train.config import TrainConfig

    if resume and flags.get("out") and config_file is None:
        saved = RunDir(flags["out"]).file("config.yaml")
        config_file = str(saved) if saved.is_file() else None
    cfg = load_config(TrainConfig, config_file, flags)
    summary = train(cfg, resume=resume)
    click.echo(json.dumps(summary, indent=2))


@click.command("evaluate")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--cache", "cache", required=True, help="Feature cache path or URL.")
@click.option("--split", default="validation", show_default=True, help="Split to score.")
@click.option("--checkpoint", type=click.Choice(["best.pt", "last.pt"]), default="best.pt", show_default=True)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--batch-size", type=int, default=2048, show_default=True)
def evaluate(run, cache, split, checkpoint, device, batch_size):
    """Score RUN on a split with its recipe's metrics over the whole set (jeong2022: CCC-V, CCC-A,
    F1-EXPR, F1-AU, P_MTL; vu2021: CCC-V, CCC-A, F1-EXPR, accuracy and its score).

    Prints them and saves RUN/eval_<split>.json.
    """
    from emokd.train.evaluate import evaluate_run
    from emokd.train.recipes.base import recipe_class

    result = evaluate_run(run, cache, split, device, checkpoint, batch_size)
    for key in recipe_class(result["recipe"]).metric_keys:
        click.echo(f"{key:8s} {result[key]:.4f}")
    click.echo(f"saved {run}/eval_{split}.json ({result['n_frames']} frames)")


@click.command("predict")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--cache", "cache", required=True, help="Feature cache path or URL holding the test videos.")
@click.option("--test-list", required=True, type=click.Path(exists=True, dir_okay=False),
              help="ABAW test list: a header, then <video>/NNNNN.jpg per line.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Submission file to write.")
@click.option("--checkpoint", type=click.Choice(["best.pt", "last.pt"]), default="best.pt", show_default=True)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--batch-size", type=int, default=2048, show_default=True)
def predict(run, cache, test_list, out, checkpoint, device, batch_size):
    """Write an ABAW MTL submission file (image,valence,arousal,expression,aus) for a test list.

    Frames without a usable face take the nearest earlier prediction. The run's recipe must
    predict all three tasks (jeong2022 does; vu2021 has no AU head).
    """
    from emokd.train.predict import write_submission

    n = write_submission(run, cache, test_list, out, device, batch_size, checkpoint)
    click.echo(f"wrote {out} ({n} rows)")


COMMANDS = [train_from_cache, evaluate, predict]
