"""Extraction progress in frames, advancing within a video, on a terminal or in a log.

Workers report each batch of frames they finish (`report_frames`: a Dask event on `TOPIC`, a
no-op outside a worker); the driver's `FrameProgress` adds them up. Its total is the frames of the
videos to extract (index-time counts, corrected to the decoded count when a video finishes), so
it ends at its total; a failed video's frames move from done to failed. On a terminal (stdout and
stderr both) it is one tqdm bar; otherwise plain lines on stderr, one every `interval` seconds
(no carriage returns, no escape codes), so a piped log reads as a log. $EMOKD_PROGRESS_S sets the
interval (default 10 s).
"""

from __future__ import annotations

import os
import sys
import threading
import time

from emokd.logs import duration

TOPIC = "emokd-extract-progress"
PLAIN_INTERVAL_S = 10.0


def report_frames(video_id: str, frames: int) -> None:
    """Tell the driver that `frames` more frames of `video_id` are done (on a Dask worker only)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):      # not running on a worker: nobody is listening
        return
    worker.log_event(TOPIC, {"video_id": video_id, "frames": int(frames)})


def on_terminal() -> bool:
    return all(getattr(stream, "isatty", lambda: False)() for stream in (sys.stdout, sys.stderr))


class FrameProgress:
    """Frames done / failed of the videos being extracted; thread-safe (events arrive on the
    client's thread, results on the driver's)."""

    def __init__(self, expected: dict[str, int], videos_total: int, videos_skipped: int = 0,
                 enabled: bool = True, terminal: bool | None = None, stream=None,
                 interval: float | None = None):
        self.expected = dict(expected)
        self.reported = dict.fromkeys(expected, 0)
        self.total = sum(self.expected.values())
        self.done = self.failed = 0
        self.videos_total, self.videos_finished = videos_total, videos_skipped
        self.videos_failed = 0
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.interval = interval or float(os.environ.get("EMOKD_PROGRESS_S") or PLAIN_INTERVAL_S)
        self.started = time.monotonic()
        self._lock = threading.RLock()
        self._bar = None
        self._stop = threading.Event()
        self._ticker = None
        if not enabled:
            return
        if on_terminal() if terminal is None else terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total or None, unit="frame", unit_scale=True, dynamic_ncols=True,
                             desc="frames", file=self.stream)
            self._postfix()
        else:
            self._ticker = threading.Thread(target=self._tick, name="emokd-progress", daemon=True)
            self._ticker.start()

    # ---- what happened ------------------------------------------------------------------------
    def frames(self, video_id: str, n: int) -> None:
        """`n` more frames of `video_id` finished on a worker."""
        with self._lock:
            if video_id not in self.reported:      # already finished, or not ours
                return
            n = int(n)
            self.reported[video_id] += n
            if self.reported[video_id] > self.expected[video_id]:   # more frames than the index knew
                self.total += self.reported[video_id] - self.expected[video_id]
                self.expected[video_id] = self.reported[video_id]
            self.done += n
            self._show()

    def finished(self, video_id: str, status: str, n_frames: int = 0) -> None:
        """A video's task ended: done (its decoded count is final) or failed (all its frames failed)."""
        with self._lock:
            reported = self.reported.pop(video_id, 0)
            expected = self.expected.pop(video_id, reported)
            self.videos_finished += 1
            if status == "done":
                n = int(n_frames) or reported      # the decoded count is final
                self.total += n - expected
                self.done += n - reported
            elif status == "failed":
                self.videos_failed += 1
                n = max(expected, reported)
                self.done -= reported
                self.failed += n
                self.total += n - expected
            else:                       # skipped by the worker (complete meanwhile): not to do
                self.done -= reported
                self.total -= expected
            self._show()

    def event(self, event) -> None:
        """A Dask topic event: (time, {"video_id", "frames"})."""
        message = event[1] if isinstance(event, tuple) else event
        self.frames(message["video_id"], message["frames"])

    # ---- how it shows -------------------------------------------------------------------------
    def line(self) -> str:
        handled = self.done + self.failed
        share = f" ({100 * handled / self.total:.1f} %)" if self.total else ""
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = f", about {duration((self.total - handled) / rate)} left" if rate > 0 and self.total > handled else ""
        return (f"extract: {handled}/{self.total} frames{share}, {self.videos_finished}/{self.videos_total} "
                f"videos, {self.failed} frames failed ({self.videos_failed} videos); {rate:.1f} frames/s{left}")

    def _postfix(self) -> None:
        self._bar.set_postfix_str(f"videos {self.videos_finished}/{self.videos_total}, failed "
                                  f"{self.videos_failed} ({self.failed} frames)", refresh=False)

    def _show(self) -> None:
        if self._bar is not None:
            self._bar.total = self.total or None
            self._bar.n = self.done + self.failed
            self._postfix()
            self._bar.refresh()

    def _print(self) -> None:
        line = self.line()
        print(line, file=self.stream, flush=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                self._print()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=1.0)
        with self._lock:
            if self._bar is not None:
                self._show()
                self._bar.close()
            elif self.enabled:
                self._print()           # the last state, always
