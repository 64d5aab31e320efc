"""`emokd extract-features`: a dataset -> the Zarr feature cache, with Dask, resumable (docs/scaling.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from emokd.cli.options import DEVICE, config_option, config_overrides, storage_options_option
from emokd.cli.dataset import dataset_root_option, load_dataset
from emokd.config import load_config, made_by, save_config
from emokd.extract.config import DETECTORS, VIDEO_DECODERS, ExtractConfig
from emokd.cache.location import absolute_url
from emokd.cache.sidecar import run_files
from emokd.errors import CacheError, DataError
from emokd.logs import quiet


@click.command("extract-features")
@click.argument("dataset", type=click.Path(exists=True))
@click.option("--cache", "cache_url", required=True, help="Cache store: a local path or an fsspec URL.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="TOML/YAML/JSON file with ExtractConfig fields (`emokd config show extract` prints "
                   "them all); flags override it.")
@config_option(ExtractConfig, "workers")
@config_option(ExtractConfig, "scheduler")
@config_option(ExtractConfig, "device", type=DEVICE)
@config_option(ExtractConfig, "batch_size")
@config_option(ExtractConfig, "limit")
@click.option("--dry-run", is_flag=True, help="Show what would be extracted; write nothing.")
@click.option("--overwrite", is_flag=True,
              help="Replace the emokd cache at --cache (needed when its settings differ); the new settings "
                   "are checked first, and anything that is not an emokd cache is never deleted.")
@click.option("--retry-failed", is_flag=True,
              help="Try again the videos an earlier run recorded as failed (skipped by default unless "
                   "their source file changed).")
@config_option(ExtractConfig, "face_encoder",
               help="Face encoder: fer_pyemotion (PyEmotion 1.0.0's CNN), fer_drer (needs --face-weights), "
                    "onnx or torchscript (a file you bring: --face-weights), or a preset of a public model "
                    "file (hsemotion_enet_b0, hsemotion_enet_b2, emotiefflib_mbf, emotiefflib_mobilevit); "
                    "`emokd weights list` shows them (docs/encoders.md).")
@config_option(ExtractConfig, "face_weights", type=click.Path(exists=True))
@config_option(ExtractConfig, "face_layer",
               help="Face encoder layer: an ONNX tensor name or 'penultimate' (the classifier's input), a "
                    "TorchScript method or submodule (default: the encoder's own).")
@click.option("--face-input", "face_input", multiple=True, metavar="KEY=VALUE",
              help="Preprocessing of an onnx/torchscript face model, repeatable: size=224, colour=BGR, "
                   "scale=1/255, mean=0.485,0.456,0.406, std=0.229,0.224,0.225, layout=NHWC.")
@config_option(ExtractConfig, "audio_encoder")
@config_option(ExtractConfig, "audio_weights", type=click.Path(exists=True))
@config_option(ExtractConfig, "audio_layer")
@click.option("--audio-input", "audio_input", multiple=True, metavar="KEY=VALUE",
              help="Preprocessing of an onnx/torchscript audio model: scale=N, layout=BN|B1N.")
@config_option(ExtractConfig, "audio_mode", type=click.Choice(["per-window", "shared-trunk"]),
               show_default="SoundNet's measured default, docs/encoders.md",
               help="SoundNet on a separate window per frame, or early layers shared across windows.")
@config_option(ExtractConfig, "face_source", type=click.Choice(["auto", "crops", "detector", "whole-frame"]),
               help="auto: dataset crops where present, else the face detector; crops: crops only "
                    "(none: face_ok False); detector; whole-frame: frames are faces already.")
@config_option(ExtractConfig, "detector", type=click.Choice(sorted(DETECTORS)))
@config_option(ExtractConfig, "detector_weights", type=click.Path(exists=True))
@config_option(ExtractConfig, "detect_every", type=click.IntRange(min=1),
               help="Run the face detector on every K-th frame of a video (and its last frame) and "
                    "interpolate the face between keyframes that found the same face; 1: every frame "
                    "(docs/encoders.md).")
@config_option(ExtractConfig, "video_decoder", type=click.Choice(VIDEO_DECODERS))
@config_option(ExtractConfig, "audio_track")
@config_option(ExtractConfig, "crop_numbering", type=click.Choice(["1-based", "0-based"]))
@config_option(ExtractConfig, "window_s")
@config_option(ExtractConfig, "crop_size")
@storage_options_option()
@config_option(ExtractConfig, "scratch_dir")
@config_option(ExtractConfig, "lock_wait_s")
@config_option(ExtractConfig, "face_set")
@config_option(ExtractConfig, "audio_set")
@config_option(ExtractConfig, "shard_frames")
@config_option(ExtractConfig, "pack_frames")
@click.option("--no-progress", is_flag=True, help="No progress bar (log lines only).")
@dataset_root_option()
@click.pass_context
def extract_features(ctx, dataset, cache_url, config_file, dry_run, overwrite, retry_failed, no_progress, face_input,
                     audio_input, dataset_root, **flags):
    """Extract frozen face and audio features of every video in DATASET into the cache at --cache.

    DATASET is an Aff-Wild2/ABAW root, a CSV/JSON manifest or a YAML/TOML sources
    file (see `emokd index`). Re-running the same command skips complete items (after a cheap
    check of their shards' arrays and their source files), redoes interrupted shards and damaged or
    changed items, and skips items that failed before unless --retry-failed; running it with
    another encoder adds that encoder's feature set to the same cache and computes only it. Exit
    status 1 when an item failed in this run, 2 for an error to act on (a full disk stops the run;
    the same command resumes it).
    """
    from emokd.extract.driver import prepare_cache, run_extraction
    from emokd.models.input_spec import parse_pairs

    overrides = config_overrides(ctx, ExtractConfig, flags)
    overrides.update({key: parse_pairs(pairs, f"--{key.replace('_', '-')}")
                      for key, pairs in (("face_input", face_input), ("audio_input", audio_input)) if pairs})
    cfg = load_config(ExtractConfig, config_file, overrides).resolved()
    cache_url = absolute_url(cache_url)   # workers (maybe on other machines) need the absolute path
    manifest = load_dataset(dataset, dataset_root)
    if not manifest.items:
        raise DataError(f"{dataset}: no video or image item found (see `emokd index {dataset} --problems`)")
    items = manifest.items[: cfg.limit] if cfg.limit else manifest.items

    if dry_run:
        _, plan = prepare_cache(items, cache_url, cfg, overwrite=overwrite, create=False,
                                retry_failed=retry_failed)
        click.echo(f"{len(items)} items in {dataset}: {len(plan.complete)} already complete in "
                   f"{cache_url}, {len(plan.todo)} to extract"
                   + (f" ({len(plan.changed)} changed, {len(plan.defective)} defective)"
                      if plan.changed or plan.defective else "")
                   + (f", {len(plan.failed_earlier)} failed earlier, not retried" if plan.failed_earlier else "")
                   + f"; {len(plan.tasks)} shard task(s)")
        for item in plan.todo[:200]:
            click.echo(f"  {item.video_id}  {item.video_path or item.crop_dir or (item.frame_images or [''])[0]}")
        click.echo("feature sets (each with its own fingerprint):")
        click.echo(yaml.safe_dump(plan.set_settings, sort_keys=True, default_flow_style=None).rstrip())
        return

    log_file, saved_config = run_files(cache_url, "extract")   # beside the store, never inside it
    provenance = made_by(dataset=str(Path(dataset).resolve()),
                         dataset_root=None if manifest.root is None else str(manifest.root))
    summary = run_extraction(items, cache_url, cfg, overwrite=overwrite, retry_failed=retry_failed,
                             progress=not no_progress and not quiet(),
                             log_file=log_file, notes=manifest.problems, provenance=provenance)
    if not summary.stopped:
        saved_config.parent.mkdir(parents=True, exist_ok=True)
        save_config(cfg, saved_config, provenance)
    click.echo(summary.line())
    for video_id, reason in list(summary.pyav.items())[:10]:
        click.echo(f"  decoded with PyAV {video_id}: {reason}")
    for video_id, lines in summary.notes.items():
        for line in lines:
            click.echo(f"  note {video_id}: {line}", err=True)
    for video_id, message in list(summary.failures.items())[:50]:
        click.echo(f"  failed {video_id}: {message}", err=True)
    if summary.stopped:
        raise CacheError(f"the run stopped: {summary.stopped}; make room (or fix the filesystem) and run the "
                         "same command again to resume")
    if summary.failed:
        click.echo(f"{summary.failed} item(s) failed; see {log_file} and `emokd cache info {cache_url}`",
                   err=True)
        sys.exit(1)


COMMANDS = [extract_features]
