"""The writer lock of a cache: one writing command (an extraction, a relabel) at a time.

    with writer_lock(cache_url, storage_options=None, purpose="extraction") as held:
        ...   # held.holder: this process's record; held.took_over: the stale record it replaced

Interface (every implementation, whatever the store):
- entering acquires the lock or raises `CacheLockedError` (a CacheError: one line, exit 2) naming
  the holder: "another extraction (host H, pid P, since T) is writing this cache <url>; ...";
- a stale lock (its holder is gone) is detected and taken over, and said so (`took_over`, a log line);
- while held, a heartbeat renews it every `heartbeat_s` seconds (a thread), so that a holder on
  another machine whose heartbeat stopped for `stale_after_s` seconds counts as gone;
- leaving releases it (only if it is still ours), also when the body raised;
- `wait_s` > 0: a held lock is tried again until it is free, stale, or `wait_s` has passed;
- `held.check()` raises (a CacheError) when the lock was lost while held (an object-store lease
  that could not be renewed in time and was taken over): the writer then stops.

Local stores (a path, file://): a lock file beside the store, `<store>.lock` (never inside it: the
store holds only Zarr objects, and `--overwrite` moves the store, not its lock). It is created
atomically (O_EXCL) and holds JSON: host, pid, the process's start time (so a reused pid is not
mistaken for the holder), since, purpose and a random token. It is stale when its host is this
machine and its process is gone, or when its heartbeat (the file's mtime) is older than
`stale_after_s`. Object stores (s3://, gs://, memory://, ...) dispatch on the URL scheme to a lease
registered in `LEASES` (`register_lease(scheme, factory)`): S3 has one (emokd/cache/lease.py, a
lease object beside the store, renewed with conditional writes); a scheme without one is written
unlocked, with a warning.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from emokd.cache import location
from emokd.errors import CacheError

log = logging.getLogger(__name__)

LOCK_TAG = "emokd writer lock"
STALE_AFTER_S = 300.0
HEARTBEAT_S = 30.0


class CacheLockedError(CacheError):
    """Another live process holds the cache's writer lock."""


@dataclass
class HeldLock:
    """What `writer_lock` yields: this process's record, and the stale record it replaced (if any)."""

    url: str
    holder: dict
    took_over: dict | None = None
    where: str | None = None  # the lock file or lease object
    checker: Callable[[], None] | None = None  # raises when the lock was lost while held

    def check(self) -> None:
        if self.checker is not None:
            self.checker()


def _process_start(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (Linux /proc), None elsewhere."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]  # field 22 of stat(5); the command name may hold spaces


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def describe(holder: dict) -> str:
    return (f"{holder.get('purpose', 'writer')} (host {holder.get('host')}, pid {holder.get('pid')}, "
            f"since {holder.get('since')})")


def my_record(purpose: str) -> dict:
    pid = os.getpid()
    return {"emokd_lock": LOCK_TAG, "host": socket.gethostname(), "pid": pid,
            "pid_start": _process_start(pid), "purpose": purpose,
            "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "token": uuid.uuid4().hex}


def holder_is_gone(holder: dict, heartbeat_age_s: float, stale_after_s: float) -> bool:
    """Whether the process that wrote `holder` no longer holds the lock."""
    if holder.get("host") == socket.gethostname():
        pid = int(holder.get("pid", -1))
        if pid <= 0 or not _pid_alive(pid):
            return True
        start = _process_start(pid)
        if start is not None and holder.get("pid_start") is not None and start != holder["pid_start"]:
            return True  # the pid was reused by another process
        return False
    return heartbeat_age_s > stale_after_s


class _Heartbeat:
    """Calls `beat` every `every_s` seconds on a daemon thread until stopped."""

    def __init__(self, beat: Callable[[], None], every_s: float):
        self._beat, self._every, self._stop = beat, every_s, threading.Event()
        self._thread = threading.Thread(target=self._run, name="emokd-lock-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._beat()
            except OSError as exc:  # a full or vanished disk must not kill the writer; it shows elsewhere
                log.warning("writer lock heartbeat failed: %s", exc)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# ---- local stores: a lock file beside the store -------------------------------------------------
def lock_path(cache_url: str | Path) -> Path:
    """The lock file of a local store: `<store>.lock`, in the store's parent folder."""
    store = location.local_path(cache_url).absolute()
    return store.with_name(store.name + ".lock")


def read_lock_file(path: Path) -> dict | None:
    """The record in a lock file; None when it is gone; CacheError when it is not an emokd lock."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise CacheError(f"{path}: a folder where emokd keeps the cache's writer lock; move it away") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict) or record.get("emokd_lock") != LOCK_TAG:
        if text == "":  # a creator killed between creating and writing it: its own, empty file
            return {"emokd_lock": LOCK_TAG, "empty": True}
        raise CacheError(f"{path}: not an emokd lock file, but emokd keeps the cache's writer lock there; "
                         "move it away")
    return record


def _create(path: Path, record: dict) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record))
    except OSError:  # a full disk: leave no half-written lock behind
        path.unlink(missing_ok=True)
        raise
    return True


def _take_over(path: Path, stale: dict) -> bool:
    """Remove the stale lock file `stale`, unless another process replaced it meanwhile."""
    aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False  # someone else removed it first
    moved = read_lock_file(aside)
    if moved is not None and moved.get("token") != stale.get("token"):
        # a live lock replaced the stale one between our read and the rename: put it back
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    aside.unlink(missing_ok=True)
    return True


@contextlib.contextmanager
def _local_lock(cache_url, purpose: str, stale_after_s: float, heartbeat_s: float) -> Iterator[HeldLock]:
    path = lock_path(cache_url)
    record = my_record(purpose)
    took_over = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(20):
            if _create(path, record):
                break
            holder = read_lock_file(path)
            if holder is None:
                continue
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if holder.get("empty") and age < 5:
                time.sleep(0.05)  # a creator between creating the file and writing its record
                continue
            if not holder.get("empty") and not holder_is_gone(holder, age, stale_after_s):
                raise CacheLockedError(
                    f"another {describe(holder)} is writing this cache {cache_url}; wait for it to finish "
                    f"(if that process is gone, delete {path})")
            if _take_over(path, holder):
                took_over = holder
                log.warning("took over the writer lock %s left by %s, whose process is gone", path,
                            describe(holder))
        else:
            raise CacheLockedError(f"{path}: could not take the cache's writer lock (it keeps changing hands)")
    except PermissionError as exc:
        raise CacheError(f"{path}: cannot create the cache's writer lock ({exc.strerror}); the folder "
                         f"{path.parent} must be writable") from None
    except OSError as exc:
        raise CacheError(f"{path}: cannot create the cache's writer lock: {exc.strerror or exc}") from None

    def beat() -> None:
        if (read_lock_file(path) or {}).get("token") == record["token"]:
            os.utime(path)

    try:
        with _Heartbeat(beat, heartbeat_s):
            yield HeldLock(str(cache_url), record, took_over, str(path))
    finally:
        with contextlib.suppress(OSError, CacheError):
            if (read_lock_file(path) or {}).get("token") == record["token"]:
                path.unlink()


# ---- dispatch --------------------------------------------------------------------------------------
def _s3_lease(*args, **kwargs):
    from emokd.cache.lease import object_lease

    return object_lease(*args, **kwargs)


LEASES: dict[str, Callable[..., contextlib.AbstractContextManager[HeldLock]]] = {"s3": _s3_lease, "s3a": _s3_lease}


def register_lease(scheme: str, factory: Callable[..., contextlib.AbstractContextManager[HeldLock]]) -> None:
    """Use `factory(cache_url, storage_options, purpose=, stale_after_s=, heartbeat_s=)` (a context
    manager yielding a HeldLock, raising CacheLockedError) for URLs `scheme://...`."""
    LEASES[scheme] = factory


def _one_lock(cache_url, storage_options, purpose: str, stale_after_s: float, heartbeat_s: float):
    if location.is_local(cache_url):
        return _local_lock(cache_url, purpose, stale_after_s, heartbeat_s)
    scheme = str(cache_url).split("://", 1)[0]
    factory = LEASES.get(scheme)
    if factory is None:
        log.warning("%s: no writer lock for %s:// stores yet; make sure no other process writes this "
                    "cache meanwhile", cache_url, scheme)
        return contextlib.nullcontext(HeldLock(str(cache_url), my_record(purpose), None, None))
    return factory(cache_url, storage_options, purpose=purpose, stale_after_s=stale_after_s,
                   heartbeat_s=heartbeat_s)


@contextlib.contextmanager
def writer_lock(cache_url: str | Path, storage_options: dict | None = None, *, purpose: str = "extraction",
                stale_after_s: float = STALE_AFTER_S, heartbeat_s: float = HEARTBEAT_S,
                wait_s: float = 0.0) -> Iterator[HeldLock]:
    """Hold the cache's writer lock for the body (see the module docstring)."""
    deadline = time.monotonic() + wait_s
    with contextlib.ExitStack() as stack:
        while True:
            try:
                held = stack.enter_context(_one_lock(cache_url, storage_options, purpose, stale_after_s,
                                                     heartbeat_s))
                break
            except CacheLockedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(max(0.05, min(heartbeat_s, 1.0, deadline - time.monotonic())))
        yield held


def current_holder(cache_url: str | Path) -> dict | None:
    """The record of whoever holds a local store's lock now (None when nobody does, or not local)."""
    if not location.is_local(cache_url):
        return None
    path = lock_path(cache_url)
    try:
        holder = read_lock_file(path)
        age = time.time() - path.stat().st_mtime
    except (CacheError, OSError):
        return None
    if holder is None or holder.get("empty") or holder_is_gone(holder, age, STALE_AFTER_S):
        return None
    return holder
