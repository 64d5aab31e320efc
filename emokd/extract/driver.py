"""The Dask driver of `emokd extract-features`: one task per video, resumable (docs/scaling.md).

A LocalCluster of N single-threaded worker processes by default, or any existing cluster by address.
The driver holds the cache's writer lock, checks the settings once (preflight.py), creates or
replaces the cache, plans the work (plan.py: complete and intact videos are skipped, defective or
changed ones redone, known-bad ones skipped unless retried), submits small task descriptions (a
VideoItem, the cache URL, the config) and receives small summaries back; frames and features never
pass through it. Failures go to the cache's failure log; a full disk stops the run cleanly. Killing
the driver loses only the videos in flight, because a video is marked complete only after all of
its arrays are written (docs/safety.md).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from emokd.cache.source_identity import source_identity
from emokd.config import to_dict
from emokd.errors import EmokdError, environment_error
from emokd.logs import file_log
from emokd.extract.config import ExtractConfig
from emokd.extract.encoders import fingerprint_settings, load_encoders
from emokd.extract.plan import clear_for_redo, plan_work
from emokd.extract.preflight import check_crop_numbering, check_settings

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
    changed: int = 0          # complete (or failed) videos whose source changed: re-extracted
    defective: int = 0        # complete videos whose arrays were damaged: re-extracted
    failed_earlier: int = 0   # recorded as failed by an earlier run, same source: not retried
    notes: dict[str, list[str]] = field(default_factory=dict)  # video id -> lines for the console
    stopped: str | None = None  # why the run stopped early (a full disk), None when it did not

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        extra = [f"re-extracted {self.changed} changed videos"] if self.changed else []
        extra += [f"redid {self.defective} defective videos"] if self.defective else []
        extra += [f"{self.failed_earlier} failed earlier, not retried (--retry-failed to try them again)"] \
            if self.failed_earlier else []
        extra += [f"{len(self.pyav)} decoded with PyAV"] if self.pyav else []
        extra += [f"{len(self.repaired)} with repaired frame timestamps"] if self.repaired else []
        extra += [f"{len(self.notes)} with notes below"] if self.notes else []
        return (f"{self.total} videos: {self.done} extracted, {self.skipped} already complete, "
                f"{self.failed} failed" + "".join(f"; {e}" for e in extra)
                + f"; {self.frames} frames in {self.seconds:.1f} s ({self.frames_per_second:.1f} frames/s)")


def prepare_cache(items: list, cache_url: str, cfg: ExtractConfig, overwrite: bool = False,
                  create: bool = True, retry_failed: bool = False):
    """Check the settings, create or open the cache (refused on a different fingerprint; replaced
    with `overwrite`) and plan the work (plan.py; the run clears what is to be redone).

    Returns (cache or None, Plan). With create=False (dry run) nothing is written. Every check that
    does not depend on one video runs before the cache is touched (preflight.py).
    """
    from emokd.cache import FeatureCache

    ids = [item.video_id for item in items]
    dupes = sorted(v for v, n in Counter(ids).items() if n > 1)
    if dupes:
        raise EmokdError(f"the dataset index has duplicate video ids: {dupes[:5]}")
    encoders = load_encoders(cfg, device="cpu")  # records only; workers load their own copies
    check_settings(cfg, encoders)
    check_crop_numbering(items, cfg.crop_numbering, cfg.face_source)
    settings = fingerprint_settings(cfg, encoders)
    records = [encoders.face.record(), encoders.audio.record()]
    if create:
        cache = FeatureCache.create(cache_url, settings, config=to_dict(cfg), encoders=records,
                                    overwrite=overwrite, storage_options=cfg.storage_options)
        return cache, plan_work(cache, items, settings, records, retry_failed, cfg.storage_options)
    existing = FeatureCache.matching(cache_url, settings, records, overwrite=overwrite,
                                     storage_options=cfg.storage_options)
    return None, plan_work(existing, items, settings, records, retry_failed, cfg.storage_options)


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
                   retry_failed: bool = False, progress: bool = True, client=None, log_file=None,
                   notes: list[str] = (), task=None, provenance: dict | None = None) -> ExtractionSummary:
    """Extract every item not yet complete in the cache; returns the summary (failures included).

    Holds the cache's writer lock throughout (a second run on the same cache is refused at once).
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
        return _locked_run(items, cache_url, cfg, overwrite, retry_failed, progress, client, log_file, notes,
                           task, started, held, provenance)


def _locked_run(items, cache_url, cfg, overwrite, retry_failed, progress, client, log_file, notes, task,
                started, held, provenance=None) -> ExtractionSummary:
    cache, plan = prepare_cache(items, cache_url, cfg, overwrite=overwrite, retry_failed=retry_failed)
    if provenance:
        cache.note_made_by(provenance)
    with file_log(log_file) if log_file is not None else contextlib.nullcontext():
        for note in notes:
            log.info("index: %s", note)
        summary = ExtractionSummary(total=len(items), skipped=len(plan.complete), changed=len(plan.changed),
                                    defective=len(plan.defective), failed_earlier=len(plan.failed_earlier))
        for vid, message in plan.failed_earlier.items():
            log.info("%s: failed in an earlier run (%s); not retried", vid, message)
        clear_for_redo(cache, plan)  # the defective and changed videos, said in the log file too
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


def _run_tasks(client, plan, cache, cache_url: str, cfg: ExtractConfig, summary: ExtractionSummary,
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
    items = {item.video_id: item for item in plan.todo}
    try:
        for future in as_completed(futures):
            video_id = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the worker process died (KilledWorker) or lost the task
                result = {"video_id": video_id, "status": "failed", "kind": "video", "n_frames": 0,
                          "seconds": 0.0, "error": f"{video_id}: task lost: {type(exc).__name__}: {exc}",
                          "log": []}
            _account(result, summary, cache, items[video_id], cfg.storage_options)
            if held is not None:
                held.check()  # a driver whose lease was taken over stops here
            if summary.stopped:
                client.cancel(list(futures))
                log.info("stopping: %s", summary.stopped)  # the command's last line says it
                break
            bar.finished(video_id, result["status"], int(result["n_frames"]))
            future.release()
    finally:
        client.unsubscribe_topic(TOPIC)
        bar.close()


def _account(result: dict, summary: ExtractionSummary, cache, item, storage_options=None) -> None:
    """Count one task's result; a failure goes into the cache's failure log at once, unless it is
    the machine's (a full disk): then the run stops, and the rerun resumes."""
    video_id = result["video_id"]
    for line in result.get("log") or ():
        log.info("[%s] %s", video_id, line)
    if result.get("notes"):
        summary.notes[video_id] = list(result["notes"])
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
        return
    if result["status"] == "skipped":
        summary.skipped += 1
        return
    if result.get("kind") == "environment":
        summary.stopped = f"writing {cache.url}: {result['error']}"
        return
    log.info("%s failed: %s", video_id, result["error"])   # the log file; the command prints the summary
    try:
        recorded = cache.record_failure(video_id, result["error"], _identity(item, storage_options))
    except OSError as exc:
        if environment_error(exc) is None:
            raise
        summary.stopped = f"{cache.url}: cannot record the failure of {video_id}: {exc.strerror}"
        return
    if recorded:
        summary.failed += 1
        summary.failures[video_id] = result["error"]
    else:  # another attempt of the same task completed it meanwhile
        summary.done += 1


def _identity(item, storage_options) -> dict:
    """The failed source's identity (so that a changed file is retried); {} when it cannot be read."""
    try:
        return source_identity(item.video_path, storage_options)
    except (OSError, EmokdError):
        return {}
