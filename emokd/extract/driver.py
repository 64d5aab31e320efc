"""The Dask driver of `emokd extract-features`: one task per shard, resumable (docs/scaling.md).

A LocalCluster of N single-threaded worker processes by default, or any existing cluster by address.
The driver holds the cache's writer lock, checks the settings once (preflight.py), creates or
replaces the cache, plans the work (plan.py: complete and intact items are skipped, defective or
changed ones redone, known-bad ones skipped unless retried; stills and short clips packed many to
a shard, long videos one each; complete shards lacking one of this run's feature sets get only
those), submits small task descriptions (the items, the cache URL, the config) and receives small
summaries back; frames and features never pass through it. Failures go to the cache's failure
log; a full disk stops the run cleanly. Killing the driver loses only the shards in flight, because
a shard is marked complete only after all of its arrays are written (docs/safety.md).
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
from emokd.extract.encoders import feature_sets, fingerprint_settings, load_encoders
from emokd.extract.plan import Plan, clear_for_redo, plan_work
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
    pyav: dict[str, str] = field(default_factory=dict)       # video -> why PyAV decoded it instead of decord
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
        extra = [f"re-extracted {self.changed} changed items"] if self.changed else []
        extra += [f"redid {self.defective} items of defective shards"] if self.defective else []
        extra += [f"{self.failed_earlier} failed earlier, not retried (--retry-failed to try them again)"] \
            if self.failed_earlier else []
        extra += [f"{len(self.pyav)} decoded with PyAV"] if self.pyav else []
        extra += [f"{len(self.repaired)} with repaired frame timestamps"] if self.repaired else []
        extra += [f"{len(self.notes)} with notes below"] if self.notes else []
        return (f"{self.total} items: {self.done} extracted, {self.skipped} already complete, "
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
    sets = feature_sets(cfg, encoders, to_dict(cfg))
    args = (sets, settings, cfg.shard_frames, cfg.pack_frames, retry_failed, cfg.storage_options)
    if create:
        cache = FeatureCache.create_sets(cache_url, sets, config=to_dict(cfg), overwrite=overwrite,
                                         storage_options=cfg.storage_options)
        return cache, plan_work(cache, items, *args)
    existing = FeatureCache.existing(cache_url, sets, overwrite, cfg.storage_options)
    return None, plan_work(existing, items, *args)


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
        clear_for_redo(cache, plan)  # the defective and changed items, said in the log file too
        log.info("extracting %d items in %d shard tasks into %s (%d already complete); feature sets %s",
                 len(plan.todo), len(plan.tasks), cache_url, len(plan.complete), plan.set_settings)
        if plan.tasks:
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
    from emokd.extract.task import extract_shard

    futures = {}
    for shard in plan.tasks:
        future = client.submit(task or extract_shard, shard, cache_url, cfg, plan.settings,
                               key=f"extract-{shard.key}-{time.time_ns()}", pure=False)
        futures[future] = shard
    expected = {i: n for shard in plan.tasks for i, n in shard.frames.items()}   # index-time counts
    bar = FrameProgress(expected, summary.total, summary.skipped, enabled=progress)
    client.subscribe_topic(TOPIC, bar.event)      # frames finished inside each item, from the workers
    try:
        for future in as_completed(futures):
            shard = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the worker process died (KilledWorker) or lost the task
                error = f"task lost: {type(exc).__name__}: {exc}"
                result = {"shard": shard.key, "seconds": 0.0, "log": [], "timings": {},
                          "items": {i: {"status": "failed", "kind": "video", "n_frames": 0, "error": f"{i}: {error}"}
                                    for i, item in zip(shard.ids, shard.items) if item is not None}}
            _account(result, summary, cache, shard, cfg.storage_options)
            if held is not None:
                held.check()  # a driver whose lease was taken over stops here
            if summary.stopped:
                client.cancel(list(futures))
                log.info("stopping: %s", summary.stopped)  # the command's last line says it
                break
            for item_id, row in result["items"].items():
                if row["status"] != "absent":
                    bar.finished(item_id, row["status"], int(row["n_frames"]))
            future.release()
    finally:
        client.unsubscribe_topic(TOPIC)
        bar.close()


def _account(result: dict, summary: ExtractionSummary, cache, shard, storage_options=None) -> None:
    """Count one shard task's result; a failed item goes into the cache's failure log at once,
    unless the failure is the machine's (a full disk): then the run stops, and the rerun resumes."""
    for line in result.get("log") or ():
        log.info("[%s] %s", result["shard"], line)
    for stage, seconds in (result.get("timings") or {}).items():
        summary.timings[stage] = summary.timings.get(stage, 0.0) + seconds
    items = {i: item for i, item in zip(shard.ids, shard.items) if item is not None}
    done = 0
    for item_id, row in result["items"].items():
        if row.get("notes"):
            summary.notes[item_id] = list(row["notes"])
        if row["status"] == "done":
            summary.done += 1
            done += 1
            summary.frames += int(row["n_frames"])
            media = row.get("media") or {}
            if media.get("pyav_reason"):  # decord was asked for, PyAV served the video
                summary.pyav[item_id] = media["pyav_reason"]
                log.info("%s: decoded with PyAV: %s", item_id, summary.pyav[item_id])
            if media.get("pts_repairs"):
                summary.repaired[item_id] = int(media["pts_repairs"])
            continue
        if row["status"] == "skipped":
            summary.skipped += 1
            continue
        if row["status"] == "absent":
            log.warning("%s: in the cache but not in the dataset index; %s", item_id, row["error"])
            continue
        if row.get("kind") == "environment":
            summary.stopped = f"writing {cache.url}: {row['error']}"
            continue
        log.info("%s failed: %s", item_id, row["error"])   # the log file; the command prints the summary
        try:
            source = row.get("source") or _identity(items.get(item_id), storage_options)  # as the worker read it
            recorded = cache.record_failure(item_id, row["error"], source)
        except OSError as exc:
            if environment_error(exc) is None:
                raise
            summary.stopped = f"{cache.url}: cannot record the failure of {item_id}: {exc.strerror}"
            continue
        if recorded:
            summary.failed += 1
            summary.failures[item_id] = row["error"]
        else:  # another attempt of the same task completed it meanwhile
            summary.done += 1
    log.info("shard %s: %d items done in %.1f s", result["shard"], done, result["seconds"])


def _identity(item, storage_options) -> dict:
    """The failed source's identity (so that a changed file is retried) when the worker could not
    read it; {} when it cannot be read here either."""
    from emokd.extract.plan import source_path

    try:
        return source_identity(source_path(item), storage_options) if item is not None else {}
    except (OSError, EmokdError):
        return {}
