"""The writer lock of a cache on S3: a lease, so that a dead driver's lock expires by itself.

An object store has no lock files, no rename and no process ids to check, so the lock is a small
JSON object beside the store (`<cache>.lease`, outside it: Zarr never sees it) that the driver
creates with a conditional write (`If-None-Match: *`: of two drivers racing, exactly one creates
it) and renews every `heartbeat_s` with another conditional write (`If-Match` on the ETag it wrote
last). A driver that finds a lease refuses with the holder's host, pid and start time, unless the
lease has not been renewed for its `ttl_s`: then the holder is dead (or cut off for longer than its
own lease) and the newcomer takes the lease over, again with `If-Match`, so that of two newcomers
only one wins. Ages are measured on the server's clock (the `Date` of the response minus the
object's `Last-Modified`), so clock skew between hosts does not matter.

A live holder is never taken over while it renews; a holder that could not renew for `ttl_s` (a
network partition, a suspended process) finds out at its next renewal, and `check()` then raises
LeaseLost so that it stops instead of writing beside its successor. A store that ignores the
conditions (an old S3-compatible server) still gets a read-back check: the token read after
writing must be ours. `object_lease` is the form that `emokd.cache.lock.writer_lock` dispatches
s3:// URLs to; docs/scaling.md#the-writer-lease-on-s3 describes it as users see it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import email.utils
import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from fsspec.asyn import sync

from emokd.cache import location
from emokd.cache.lock import CacheLockedError, HeldLock, describe
from emokd.errors import CacheError

log = logging.getLogger(__name__)

LEASE_SUFFIX = ".lease"
FORMAT_TAG = "emokd writer lease"
# S3 error codes of a condition that did not hold (412), or of a concurrent conditional write (409)
CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


class LeaseHeld(CacheLockedError):
    """Another driver holds a live lease on the cache."""


class LeaseLost(CacheError):
    """This driver's lease was not renewed in time and may have been taken over."""


def lease_url(cache_url: str) -> str:
    return str(cache_url).rstrip("/") + LEASE_SUFFIX


@dataclass(frozen=True)
class LeaseRecord:
    """What a lease object says, its ETag, and how long ago it was last written."""

    record: dict
    etag: str
    age_s: float
    ttl_s: float

    @property
    def token(self) -> str:
        return str(self.record.get("token", ""))

    @property
    def expired(self) -> bool:
        return self.age_s > self.ttl_s

    def describe(self) -> str:
        return f"{describe(self.record)}, renewed {self.age_s:.0f} s ago"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _error_code(exc: BaseException | None) -> str | None:
    """The S3 error code (PreconditionFailed, ...) behind an s3fs error, if any."""
    while exc is not None:
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return response["Error"].get("Code")
        exc = exc.__cause__ or exc.__context__
    return None


class _S3Object:
    """One S3 object written with conditional requests (s3fs's client)."""

    def __init__(self, url: str, storage_options: dict | None):
        self.fs, path = location.filesystem(url, storage_options)
        self.bucket, self.key, _ = self.fs.split_path(path)

    def _call(self, method: str, **kwargs):
        return sync(self.fs.loop, self.fs._call_s3, method, Bucket=self.bucket, Key=self.key, **kwargs)

    def _conditional_put(self, body: bytes, **condition) -> str | None:
        """The new ETag, or None when the condition did not hold."""
        try:
            return self._call("put_object", Body=body, **condition)["ETag"]
        except OSError as exc:  # FileExistsError included
            if isinstance(exc, FileExistsError) or _error_code(exc) in CONFLICT_CODES:
                return None
            raise

    def create(self, body: bytes) -> str | None:
        return self._conditional_put(body, IfNoneMatch="*")

    def replace(self, body: bytes, etag: str) -> str | None:
        return self._conditional_put(body, IfMatch=etag)

    def read(self) -> tuple[bytes, str, float | None] | None:
        """(body, ETag, age in seconds on the server's clock), or None when there is none."""
        try:
            response = self._call("get_object")
        except FileNotFoundError:
            return None
        body = sync(self.fs.loop, response["Body"].read)
        response["Body"].close()
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        age = None
        if "date" in headers and response.get("LastModified") is not None:
            age = (email.utils.parsedate_to_datetime(headers["date"]) - response["LastModified"]).total_seconds()
        return body, response["ETag"], age

    def delete(self) -> None:
        self._call("delete_object")


_VANISHED = LeaseRecord({}, "", 0.0, 0.0)  # released or replaced between two requests: try again


class ObjectLease:
    """Holds the writer lease of the cache at `cache_url` (`acquire`), renewing it in a thread."""

    def __init__(self, cache_url: str, storage_options: dict | None = None, ttl_s: float = 300.0,
                 heartbeat_s: float | None = None, purpose: str = "extraction"):
        if ttl_s <= 0:
            raise CacheError(f"lease expiry must be > 0 seconds, got {ttl_s}")
        self.cache_url = str(cache_url)
        self.url = lease_url(cache_url)
        self.ttl_s = float(ttl_s)
        self.heartbeat_s = float(heartbeat_s) if heartbeat_s else self.ttl_s / 4
        self.record = {"format": FORMAT_TAG, "cache": self.cache_url, "host": socket.gethostname(),
                       "pid": os.getpid(), "purpose": purpose, "since": _now(), "ttl_s": self.ttl_s,
                       "token": uuid.uuid4().hex}
        self.took_over: dict | None = None
        self._object = _S3Object(self.url, storage_options)
        self._etag: str | None = None
        self._renewed = 0.0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def token(self) -> str:
        return self.record["token"]

    def _body(self) -> bytes:
        return json.dumps({**self.record, "renewed": _now()}).encode()

    def holder(self) -> LeaseRecord | None:
        """The lease as it is on the store now (anyone's), or None when there is none."""
        with location.store_errors(self.url):
            found = self._object.read()
        if found is None:
            return None
        body, etag, age = found
        try:
            record = json.loads(body)
            record = record if isinstance(record, dict) and record.get("format") == FORMAT_TAG else {}
        except ValueError:
            record = {}  # damaged or foreign: it expires like any lease
        if age is None:  # no server clock: the holder's own renewal time
            try:
                age = (_dt.datetime.now(_dt.timezone.utc)
                       - _dt.datetime.fromisoformat(record["renewed"])).total_seconds()
            except (KeyError, TypeError, ValueError):
                age = float("inf")
        ttl = record.get("ttl_s", self.ttl_s)
        return LeaseRecord(record, etag, max(0.0, age), float(ttl) if isinstance(ttl, int | float) else self.ttl_s)

    def _try_acquire(self) -> LeaseRecord | None:
        """Take the lease if it is free or expired and return None; else the live holder, or
        _VANISHED when the lease changed hands between two requests."""
        if self._object.create(self._body()) is None:
            current = self.holder()
            if current is None or not current.expired:
                return current or _VANISHED
            if self._object.replace(self._body(), current.etag) is None:
                return self.holder() or _VANISHED  # another newcomer took it over first
            self.took_over = current.record
            log.warning("%s: took over the expired writer lease of %s", self.cache_url, current.describe())
        mine = self.holder()  # read back: a store that ignored the condition shows the last writer
        if mine is None or mine.token != self.token:
            return mine or _VANISHED
        self._etag, self._renewed = mine.etag, time.monotonic()
        return None

    def acquire(self) -> ObjectLease:
        """Hold the lease, or raise LeaseHeld naming the live holder."""
        with location.store_errors(self.url):
            for attempt in itertools.count():
                holder = self._try_acquire()
                if holder is None:
                    break
                if holder is _VANISHED and attempt < 10:
                    continue
                left = max(0.0, holder.ttl_s - holder.age_s)
                raise LeaseHeld(f"another {holder.describe()} is writing this cache {self.cache_url}; wait for "
                                f"it to finish (if that process is gone, its lease expires in {left:.0f} s, or "
                                f"delete {self.url})")
        self._thread = threading.Thread(target=self._renew_loop, name="emokd-lease", daemon=True)
        self._thread.start()
        log.info("%s: writer lease held (renewed every %.1f s, expires %.1f s after a renewal)",
                 self.cache_url, self.heartbeat_s, self.ttl_s)
        return self

    def _renew_once(self) -> None:
        etag = self._object.replace(self._body(), self._etag)
        if etag is None:
            current = self.holder()
            if current is None or current.token != self.token:
                self._lost = (f"{self.cache_url}: the writer lease was taken over by "
                              + (current.describe() if current else "nobody (it was deleted)"))
                return
            etag = current.etag
        self._etag, self._renewed = etag, time.monotonic()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_s) and self._lost is None:
            try:
                self._renew_once()
            except Exception as exc:  # a network hiccup: retry until the lease would have expired
                log.warning("%s: could not renew the writer lease (%s); retrying", self.cache_url, exc)
                if time.monotonic() - self._renewed > self.ttl_s:
                    self._lost = (f"{self.cache_url}: the writer lease could not be renewed for "
                                  f"{self.ttl_s:.0f} s ({exc})")
            if self._lost is not None:
                log.error("%s", self._lost)

    def check(self) -> None:
        """Raise LeaseLost if the lease was not renewed in time (another driver may hold it now)."""
        if self._lost is not None:
            raise LeaseLost(self._lost + "; stopping so that two drivers never write one cache")

    def release(self) -> None:
        """Stop renewing, and delete the lease object if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat_s + 30)
            self._thread = None
        try:
            current = self.holder()
            if current is not None and current.token == self.token:
                self._object.delete()
        except Exception as exc:  # never hide the driver's own error behind this one
            log.warning("%s: could not delete the writer lease (%s); it expires %.0f s after its last "
                        "renewal", self.cache_url, exc, self.ttl_s)

    def __enter__(self) -> ObjectLease:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def object_lease(cache_url: str, storage_options: dict | None = None, *, purpose: str = "extraction",
                 stale_after_s: float = 300.0, heartbeat_s: float | None = None):
    """The lease as `writer_lock` yields locks: a HeldLock whose `check()` raises once it is lost."""
    with ObjectLease(cache_url, storage_options, stale_after_s, heartbeat_s, purpose) as lease:
        yield HeldLock(lease.cache_url, dict(lease.record), lease.took_over, lease.url, lease.check)
