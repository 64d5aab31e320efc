"""The Dask driver of `emokd extract-features`: one task per video, resumable (docs/scaling.md).

A LocalCluster of N single-threaded worker processes by default, or any existing cluster by address.
The driver submits small task descriptions (a VideoItem, the cache URL, the config) and receives small
summaries back; frames and features never pass through it. Complete videos are skipped, incomplete
ones redone, failures recorded in the cache's failure log; killing the driver loses only the videos
in flight, because a video is marked complete only after all of its arrays are written.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from emokd.config import to_dict
from emokd.errors import EmokdError
from emokd.logs import file_log
from emokd.extract.config import ExtractConfig
from emokd.extract.encoders import fingerprint_settings, load_encoders

log = logging.getLogger(__name__)


@dataclass
class ExtractionSummary:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    frames: int = 0
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # worker seconds per stage, all videos
    pyav: dict[str, str] = field(default_factory=dict)       # video -> why PyAV decoded it, not decord
    repaired: dict[str, int] = field(default_factory=dict)   # video -> frame timestamps repaired

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        media = "".join([f"; {len(self.pyav)} decoded with PyAV" if self.pyav else "",
                         f"; {len(self.repaired)} with repaired frame timestamps" if self.repaired else ""])
        return (f"{self.total} videos: {self.done} extracted, {self.skipped} already complete, "
                f"{self.failed} failed; {self.frames} frames in {self.seconds:.1f} s "
                f"({self.frames_per_second:.1f} frames/s){media}")


@dataclass
class Plan:
    todo: list           # VideoItems to extract
    complete: list[str]  # video ids already complete in the cache
    settings: dict       # fingerprint settings
    encoders: list[dict]


def prepare_cache(items: list, cache_url: str, cfg: ExtractConfig, overwrite: bool = False,
                  create: bool = True):
    """Resolve the encoders, create or open the cache (refused on a different fingerprint), plan the work.

    Returns (cache or None, Plan). With create=False (dry run) nothing is written.
    """
    from emokd.cache import FeatureCache

    ids = [item.video_id for item in items]
    dupes = sorted(v for v, n in Counter(ids).items() if n > 1)
    if dupes:
        raise EmokdError(f"the dataset index has duplicate video ids: {dupes[:5]}")
    encoders = load_encoders(cfg, device="cpu")  # records only; workers load their own copies
    settings = fingerprint_settings(cfg, encoders)
    records = [encoders.face.record(), encoders.audio.record()]
    cache = None
    complete: set[str] = set()
    if create:
        cache = FeatureCache.create(cache_url, settings, config=to_dict(cfg), encoders=records,
                                    overwrite=overwrite, storage_options=cfg.storage_options)
        complete = set(cache.video_ids())
    else:
        complete = FeatureCache.complete_under(cache_url, settings, records, overwrite=overwrite,
                                               storage_options=cfg.storage_options)
    todo = [item for item in items if item.video_id not in complete]
    return cache, Plan(todo, sorted(complete & set(ids)), settings, records)


@contextlib.contextmanager
def dask_client(workers: int = 1, scheduler: str | None = None):
    """A client on the cluster at `scheduler`, or on a new LocalCluster of single-threaded processes."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler, timeout="30s")
        try:
            yield client
        finally:
            client.close()
        return
    # worker-saturation 1.0: a worker holds only the task it runs, so when a video kills its worker
    # process (out of memory, a decoder crash) no queued bystander is blamed along with it.
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR,
                               env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def run_extraction(items: list, cache_url: str, cfg: ExtractConfig, *, overwrite: bool = False,
                   progress: bool = True, client=None, log_file=None,
                   notes: list[str] = (), task=None, provenance: dict | None = None) -> ExtractionSummary:
    """Extract every item not yet complete in the cache; returns the summary (failures included).

    `log_file` (e.g. inside a local cache folder) receives the log of this run once the cache
    exists, starting with `notes` (e.g. the dataset index's problems); `provenance`
    (`emokd.config.made_by`) is added to the cache's record of who wrote it. `task` replaces
    `extract_video` (same signature; it must be importable on the workers), for tests.
    """
    from emokd.cache.lock import writer_lock

    cfg = cfg.resolved()
    if cfg.limit is not None:
        items = items[: cfg.limit]
    started = time.perf_counter()
    with writer_lock(cache_url, cfg.storage_options, purpose="extraction", stale_after_s=cfg.lock_expiry_s,
                     heartbeat_s=cfg.lock_expiry_s / 10, wait_s=cfg.lock_wait_s) as held:
        return _locked_run(items, cache_url, cfg, overwrite, progress, client, log_file, notes, task, started,
                           held, provenance)


def _locked_run(items, cache_url, cfg, overwrite, progress, client, log_file, notes, task,
                started, held, provenance=None) -> ExtractionSummary:
    cache, plan = prepare_cache(items, cache_url, cfg, overwrite=overwrite)
    if provenance:
        cache.note_made_by(provenance)
    with file_log(log_file) if log_file is not None else contextlib.nullcontext():
        for note in notes:
            log.info("index: %s", note)
        summary = ExtractionSummary(total=len(items), skipped=len(plan.complete))
        log.info("extracting %d videos into %s (%d already complete); settings %s",
                 len(plan.todo), cache_url, len(plan.complete), plan.settings)
        if plan.todo:
            with contextlib.ExitStack() as stack:
                if client is None:
                    client = stack.enter_context(dask_client(cfg.workers, cfg.scheduler))
                _run_tasks(client, plan, cache, cache_url, cfg, summary, progress, task, held)
        summary.seconds = time.perf_counter() - started
        log.info("%s", summary.line())
        if summary.timings:
            log.info("worker seconds per stage: %s",
                     ", ".join(f"{k} {v:.2f}" for k, v in sorted(summary.timings.items())))
    return summary


def _run_tasks(client, plan: Plan, cache, cache_url: str, cfg: ExtractConfig, summary: ExtractionSummary,
               progress: bool, task=None, held=None) -> None:
    from distributed import as_completed

    from emokd.extract.progress import TOPIC, FrameProgress
    from emokd.extract.task import extract_video

    futures = {}
    for item in plan.todo:
        future = client.submit(task or extract_video, item, cache_url, cfg, plan.settings,
                               key=f"extract-{item.video_id}-{time.time_ns()}", pure=False)
        futures[future] = item.video_id
    expected = {item.video_id: int(item.n_frames or 0) for item in plan.todo}  # index-time counts
    bar = FrameProgress(expected, summary.total, summary.skipped, enabled=progress)
    client.subscribe_topic(TOPIC, bar.event)      # frames finished inside each video, from the workers
    try:
        for future in as_completed(futures):
            video_id = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the worker process died (KilledWorker) or lost the task
                result = {"video_id": video_id, "status": "failed", "n_frames": 0, "seconds": 0.0,
                          "error": f"{video_id}: task lost: {type(exc).__name__}: {exc}", "log": []}
            _account(result, summary, cache)
            if held is not None:
                held.check()  # a driver whose lease was taken over stops here
            bar.finished(video_id, result["status"], int(result["n_frames"]))
            future.release()
    finally:
        client.unsubscribe_topic(TOPIC)
        bar.close()


def _account(result: dict, summary: ExtractionSummary, cache) -> None:
    """Count one task's result; a failure goes into the cache's failure log at once."""
    video_id = result["video_id"]
    for line in result.get("log") or ():
        log.info("[%s] %s", video_id, line)
    if result["status"] == "done":
        summary.done += 1
        summary.frames += int(result["n_frames"])
        for stage, seconds in (result.get("timings") or {}).items():
            summary.timings[stage] = summary.timings.get(stage, 0.0) + seconds
        log.info("%s: %d frames in %.1f s", video_id, result["n_frames"], result["seconds"])
        media = result.get("media") or {}
        if media.get("decoder") == "pyav":
            summary.pyav[video_id] = media.get("pyav_reason", "")
            log.info("%s: decoded with PyAV: %s", video_id, summary.pyav[video_id])
        if media.get("pts_repairs"):
            summary.repaired[video_id] = int(media["pts_repairs"])
    elif result["status"] == "skipped":
        summary.skipped += 1
    else:
        summary.failed += 1
        summary.failures[video_id] = result["error"]
        log.info("%s failed: %s", video_id, result["error"])   # the log file; the command prints the summary
        cache.record_failure(video_id, result["error"])
