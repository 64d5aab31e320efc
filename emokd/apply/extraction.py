"""New videos -> a feature cache made with the run's own extraction settings.

A run's checkpoint keeps the extraction config and the encoder records of the cache it was
trained on (`extraction`); runs made before that are read through their config.yaml's cache. The
new videos are extracted with those settings (only runtime fields, the face source of videos that
have no crop files, and the detector weights may change) into `--cache` (kept, and reused: videos
already complete there are skipped) or into a temporary cache that is removed afterwards. The new
cache's encoder records must equal the run's, or the features would not be the ones the model saw.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from emokd.cache.location import absolute_url
from emokd.cache.store import FeatureCache
from emokd.config import from_dict
from emokd.errors import DataError, EmokdError
from emokd.extract.config import ExtractConfig
from emokd.extract.driver import ExtractionSummary, prepare_cache, run_extraction
from emokd.train.runs import RunDir

log = logging.getLogger(__name__)

RUNTIME = ("device", "workers", "batch_size", "scheduler", "limit", "storage_options", "scratch_dir",
           "lock_expiry_s", "lock_wait_s")  # where and how this call runs, never taken from the run
ENCODER_KEYS = ("name", "kind", "output_dim", "layer", "weights_sha256", "input_spec")


@dataclass
class RunExtraction:
    config: dict                 # ExtractConfig fields of the run's training cache
    encoders: list[dict]         # its encoder records


def run_extraction_settings(run: str | Path, checkpoint: dict,
                            storage_options: dict | None = None) -> RunExtraction:
    """What made the features `run` was trained on: from its checkpoint, else from its cache."""
    stored = checkpoint.get("extraction")
    if stored:
        return RunExtraction(dict(stored["config"]), list(stored["encoders"]))
    cache_url = (checkpoint.get("config") or {}).get("cache") or RunDir(run).config().cache
    try:
        cache = FeatureCache.open(cache_url, storage_options=storage_options)
    except EmokdError as exc:
        raise DataError(f"{run}: its checkpoint records no extraction settings (an older emokd) and its "
                        f"training cache is not readable here ({exc}); train the run again, or run "
                        "predict-video where that cache is") from exc
    return RunExtraction(dict(cache.config), list(cache.encoders))


def extract_config_for(settings: RunExtraction, overrides: dict) -> ExtractConfig:
    """The run's ExtractConfig for new videos: its feature settings, `overrides` for the runtime
    fields (and face_source / detector_weights when given). A run whose faces came from crop
    files gets the detector (new videos have no crops), with a note in the log."""
    known = {f.name for f in dataclasses.fields(ExtractConfig)}
    stored = {k: v for k, v in settings.config.items() if k in known and k not in RUNTIME}
    cfg = from_dict(ExtractConfig, stored, " (the run's extraction settings)")
    if cfg.face_source == "crops" and overrides.get("face_source") is None:
        log.warning("the run's features came from dataset crop files; new videos have none, so faces "
                    "come from the face detector and alignment (--face-source to choose)")
        cfg = dataclasses.replace(cfg, face_source="detector")
    return dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None}).resolved()


def check_same_encoders(run: str | Path, run_encoders: list[dict], records: list[dict]) -> None:
    """DataError unless the encoder `records` built here are exactly those the run was trained on."""
    def key(found: list[dict]) -> list[dict]:
        return json.loads(json.dumps([{k: r.get(k) for k in ENCODER_KEYS} for r in found], default=str))

    if key(run_encoders) != key(records):
        raise DataError(f"the encoders built here {key(records)} differ from those run {run} was trained "
                        f"on {key(run_encoders)} (other weights files?); extract with the run's weights")


@contextlib.contextmanager
def extracted(items: list, run: str | Path, settings: RunExtraction, cfg: ExtractConfig,
              cache_url: str | None = None, progress: bool = True, log_file: Path | None = None,
              provenance: dict | None = None) -> Iterator[tuple[FeatureCache, ExtractionSummary]]:
    """(cache holding the items' features, extraction summary); a temporary cache (no `cache_url`)
    is removed when the block ends, whatever happens in it."""
    tmp = None
    if cache_url is None:
        tmp = Path(tempfile.mkdtemp(prefix="emokd-predict-video-"))
        cache_url = str(tmp / "cache.zarr")
    cache_url = absolute_url(cache_url)
    try:
        _, plan = prepare_cache(items, cache_url, cfg, create=False)    # refusals before any write
        check_same_encoders(run, settings.encoders, plan.encoders)
        summary = run_extraction(items, cache_url, cfg, progress=progress, log_file=log_file,
                                 provenance=provenance)
        yield FeatureCache.open(cache_url, storage_options=cfg.storage_options), summary
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)       # only the folder made above
