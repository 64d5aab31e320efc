"""`emokd inspect`: one picture per video to check alignment by eye."""

from __future__ import annotations

from pathlib import Path

import click

from emokd.cli.dataset import dataset_root_option, load_dataset
from emokd.cli.options import device_option, run_option, storage_options_option

COMMANDS: list = []


@click.command("inspect")
@click.argument("video_id")
@click.option("--cache", "cache_path", required=True, type=click.Path(),
              help="Feature cache (made by `emokd extract-features`).")
@click.option("--dataset", type=click.Path(exists=True), default=None,
              help="Dataset root or manifest file, to find the video and its crops "
                   "[default: the source file recorded in the cache].")
@run_option("A training run folder: its predictions are drawn next to the labels.", required=False)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--crops", "n_crops", default=10, help="How many face crops to show.")
@click.option("--detector-weights", default=None, type=click.Path(),
              help="Face detector weights folder, if extraction used non-default ones.")
@device_option("Torch device of the run's model and the face detector")
@dataset_root_option()
@storage_options_option()
def inspect_command(video_id, cache_path, dataset, run, out, n_crops, detector_weights, device, dataset_root,
                    storage_options):
    """Draw VIDEO_ID's face crops in time order over its audio waveform and its per-frame labels
    (and a run's predictions), all on the video's clock, into a PNG.

    The crops and the waveform are made again from the media by the same code that extraction
    used, so a misaligned crop or a shifted audio track shows up by eye.
    """
    from emokd.cache import FeatureCache
    from emokd.inspect.gather import find_item, gather
    from emokd.inspect.plot import render_inspect
    from emokd.inspect.predictions import run_predictions

    cache = FeatureCache.open(cache_path, storage_options=storage_options)
    item = None
    if dataset is not None:
        item = find_item(load_dataset(dataset, dataset_root), video_id)
    predictions = run_predictions(Path(run), cache, video_id, device) if run is not None else None
    data = gather(cache, video_id, item=item, n_crops=n_crops, detector_weights=detector_weights, device=device)
    if predictions is not None:
        data.predictions, data.prediction_name = predictions, Path(run).name
    path = render_inspect(data, out)
    shown = ", ".join(f"#{k}" for k in data.crop_index)
    click.echo(f"{path}: {video_id}, {len(data.pts)} frames; crops of frames {shown} over the waveform"
               + ("; labels" if data.labels is not None else "")
               + (f"; predictions of {data.prediction_name}" if data.predictions is not None else ""))


COMMANDS.append(inspect_command)
