"""`emokd predict-video VIDEO|FOLDER --run RUN --out DIR`: a trained model on any video."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from emokd.apply.config import PredictVideoConfig
from emokd.cli.options import DEVICE, config_option, run_option, storage_options_option


@click.command("predict-video")
@click.argument("videos", metavar="VIDEO|FOLDER", type=click.Path(exists=True))
@run_option("The trained run folder whose model (and extraction settings) to use.")
@config_option(PredictVideoConfig, "out", required=True, type=click.Path(file_okay=False),
               help="Folder for <video id>.csv per video (and the ABAW file, the pictures, the log).")
@config_option(PredictVideoConfig, "cache", type=click.Path(),
               help="Feature cache to keep and reuse: videos already complete in it are not extracted "
                    "again [default: a temporary cache, removed at the end].")
@config_option(PredictVideoConfig, "smooth", metavar="SECONDS")
@config_option(PredictVideoConfig, "abaw", is_flag=True,
               help="Also write abaw_mtl_submission.txt (image,valence,arousal,expression,aus per frame).")
@config_option(PredictVideoConfig, "picture", is_flag=True,
               help="Also draw <video id>.png: face crops over the waveform and the predictions.")
@config_option(PredictVideoConfig, "checkpoint", type=click.Choice(["best.pt", "last.pt"]),
               help="Which checkpoint of the run.")
@config_option(PredictVideoConfig, "device", type=DEVICE)
@config_option(PredictVideoConfig, "workers")
@config_option(PredictVideoConfig, "batch_size")
@config_option(PredictVideoConfig, "face_source", type=click.Choice(["auto", "crops", "detector", "whole-frame"]),
               help="How faces are found.", show_default="the run's; its dataset crops become the detector")
@config_option(PredictVideoConfig, "detector_weights", type=click.Path(exists=True))
@storage_options_option()
@click.option("--no-progress", is_flag=True, help="No progress bar (log lines only).")
def predict_video_command(videos, run, no_progress, storage_options, **flags):
    """Predict valence/arousal, expressions and AUs for every frame of VIDEO (or of every video
    in FOLDER) with a trained run, writing one CSV per video to --out.

    Faces are detected (or read as the run's extraction did), features extracted with the run's
    own encoder settings, and the model run on every frame. Columns: frame, time (the container's
    presentation time, s), face_ok, valence, arousal, the probability of each expression and of
    each AU. Frames without a face repeat the nearest earlier face frame's prediction. Exit
    status 1 when a video failed.
    """
    from emokd.apply.predict_video import predict_video
    from emokd.logs import quiet

    cfg = PredictVideoConfig(videos=str(Path(videos).resolve()), run=str(Path(run).resolve()),
                             storage_options=storage_options or {}, **flags)
    result = predict_video(cfg, progress=not no_progress and not quiet(),
                           on_video=_draw_picture(cfg) if cfg.picture else None)
    for path in result.csvs:
        click.echo(f"wrote {path}")
    if result.abaw is not None:
        click.echo(f"wrote {result.abaw}")
    click.echo(f"{len(result.csvs)} video(s), {result.frames} frames predicted"
               + (f" (smoothed over {cfg.smooth:g} s)" if cfg.smooth else "")
               + f"; {result.extracted} extracted, {result.reused} reused")
    for video_id, message in result.failures.items():
        click.echo(f"  failed {video_id}: {message}", err=True)
    if result.failures:
        click.echo(f"{len(result.failures)} video(s) failed; see {Path(cfg.out) / 'predict_video.log'}", err=True)
        sys.exit(1)


def _draw_picture(cfg: PredictVideoConfig):
    """on_video callback: the inspect picture of one video with its predictions."""
    from emokd.inspect.gather import gather
    from emokd.inspect.plot import render_inspect
    from emokd.inspect.predictions import picture_predictions

    def draw(cache, prediction, item) -> None:
        data = gather(cache, prediction.video_id, item=item, detector_weights=cfg.detector_weights,
                      device=cfg.device)
        data.predictions = picture_predictions(prediction.probabilities)
        data.prediction_name = Path(cfg.run).name
        path = render_inspect(data, Path(cfg.out) / f"{prediction.video_id}.png")
        click.echo(f"wrote {path}")

    return draw


COMMANDS = [predict_video_command]
