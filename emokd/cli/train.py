"""`emokd train-from-cache`, `emokd evaluate`, `emokd predict`, `emokd export-soft`."""

from __future__ import annotations

import json

import click

from emokd.cli.options import (DEVICE, config_option, config_overrides, deprecated, device_option, pick_run,
                               run_option, storage_options_option)
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
@storage_options_option()
@config_option(TrainConfig, "face_features", help="Face feature set of the cache (default: its first; "
                                                   "`emokd cache info` lists them).")
@config_option(TrainConfig, "audio_features", help="Audio feature set of the cache (default: its first).")
@config_option(TrainConfig, "max_memory", help="Memory for features: 0.5 = half the RAM (the default), or 12G; "
                                               "beyond it, training reads shard-sized blocks from the cache.")
@click.option("--resume", is_flag=True, help="Continue the run in --run from its last.pt (with its config.yaml).")
@config_option(TrainConfig, "allow_other_cache", is_flag=True)
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
@storage_options_option()
@click.option("--allow-other-cache", is_flag=True,
              help="Score on a cache whose fingerprint differs from the run's training cache (recorded).")
def evaluate(legacy_run, run, cache, split, checkpoint, device, batch_size, storage_options, allow_other_cache):
    """Score --run on a split with its recipe's metrics over the whole set (jeong2022: CCC-V, CCC-A,
    F1-EXPR, F1-AU, P_MTL; vu2021: CCC-V, CCC-A, F1-EXPR, accuracy and its score).

    Each task is scored on its own set: the frames of the videos whose split for that task is
    SPLIT. P_MTL is computed on the dataset's MTL set of that split when it has one, else from the
    per-task sets. Prints, per task, the videos and frames scored and the metrics, and saves
    RUN/eval_<split>.json.
    """
    from emokd.train.evaluate import evaluate_run
    from emokd.train.recipes.base import recipe_class

    run = pick_run(run, legacy_run, "evaluate")
    result = evaluate_run(run, cache, split, device, checkpoint, batch_size, storage_options, allow_other_cache)
    for task, found in result["tasks"].items():
        values = "  ".join(f"{k} {v:.4f}" for k, v in found.items() if k not in ("n_videos", "n_frames"))
        click.echo(f"{task:5s} {found['n_videos']:5d} videos {found['n_frames']:8d} frames  {values}")
    for key in recipe_class(result["recipe"]).metric_keys:
        click.echo(f"{key:8s} {result[key]:.4f}")
    if result.get("mtl_on"):
        click.echo(f"P_MTL on {result['mtl_on']}")
    click.echo(f"saved {run}/eval_{split}.json")


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
@storage_options_option()
@click.option("--allow-other-cache", is_flag=True,
              help="Predict from a cache whose fingerprint differs from the run's training cache (recorded).")
def predict(legacy_run, run, cache, test_list, out, checkpoint, device, batch_size, storage_options,
            allow_other_cache):
    """Write an ABAW MTL submission file (image,valence,arousal,expression,aus) for a test list.

    Frames without a usable face take the nearest earlier prediction. The run's recipe must
    predict all three tasks (jeong2022 does; vu2021 has no AU head).
    """
    from emokd.train.predict import write_submission

    run = pick_run(run, legacy_run, "predict")
    n = write_submission(run, cache, test_list, out, device, batch_size, checkpoint, storage_options,
                         allow_other_cache)
    click.echo(f"wrote {out} ({n} rows)")


@click.command("export-soft")
@_legacy_run_argument()
@run_option(help="Trained teacher run folder.", required=False)
@click.option("--cache", "cache", required=True, help="Feature cache path or URL to write the soft labels to.")
@click.option("--name", help="Name under the cache's soft/ (default: the run's soft_run, else "
                             "<run folder>-<8 hex of its path>).")
@click.option("--missing-only/--all", "only_missing", default=True, show_default=True,
              help="Write only videos without soft labels of this checkpoint, or every video.")
@device_option()
@click.option("--batch-size", type=int, default=2048, help="Frames per prediction batch.")
def export_soft(legacy_run, run, cache, name, only_missing, device, batch_size):
    """Write a trained teacher's predictions for every cached frame to the cache, without
    retraining (e.g. into another cache, or under another name). Students find them by teacher:
    `--role student --teacher RUN` reuses any complete set this checkpoint made."""
    from emokd.train.soft_labels import export_soft_labels

    run = pick_run(run, legacy_run, "export-soft")
    written_as, n = export_soft_labels(cache, run, device, batch_size, only_missing, name)
    click.echo(f"soft labels {written_as!r}: {n} video(s) written to {cache}")


COMMANDS = [train_from_cache, evaluate, predict, export_soft]
