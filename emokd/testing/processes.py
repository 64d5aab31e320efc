"""Stopping the helper processes that tests and benchmarks start in their own session, and the
peak memory of a process (`PeakRSS`)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time


def stop_session(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process group of `proc` (started with start_new_session=True), then SIGKILL it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)


class PeakRSS:
    """Peak resident memory (MiB) of this process, sampled every 20 ms by a thread. Not ru_maxrss:
    Linux carries the high-water mark of the process that forked this one across fork and exec, so
    a child started by a big parent would report the parent's size."""

    def __init__(self) -> None:
        import psutil   # installed with distributed

        self._process = psutil.Process()
        self.start = self.peak = self._process.memory_info().rss / 2**20
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, self._process.memory_info().rss / 2**20)
            time.sleep(0.02)

    def stop(self) -> float:
        self._running = False
        self._thread.join()
        return max(self.peak, self._process.memory_info().rss / 2**20)
