"""Stopping the helper processes that tests and benchmarks start in their own session."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


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
