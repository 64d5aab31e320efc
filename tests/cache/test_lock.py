"""The cache's writer lock, with real processes: held, refused, released, stale ones taken over."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from emokd.cache.lock import CacheLockedError, LOCK_TAG, current_holder, lock_path, writer_lock
from emokd.errors import CacheError

HOLD = """
import sys, time
from emokd.cache.lock import writer_lock
with writer_lock(sys.argv[1], purpose="extraction", heartbeat_s=0.2):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder(url):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(url)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_naming_host_pid_and_since(tmp_path):
    url = tmp_path / "cache.zarr"
    proc = _holder(url)
    try:
        with pytest.raises(CacheLockedError) as err:
            with writer_lock(url):
                pass
        text = str(err.value)
        assert f"another extraction (host {socket.gethostname()}, pid {proc.pid}, since " in text
        assert "is writing this cache" in text and "\n" not in text
        assert current_holder(url)["pid"] == proc.pid
        # its heartbeat renews the file's mtime while it holds the lock
        before = os.stat(lock_path(url)).st_mtime_ns
        time.sleep(0.6)
        assert os.stat(lock_path(url)).st_mtime_ns > before
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_released_on_exit_and_on_error(tmp_path):
    url = tmp_path / "cache.zarr"
    with writer_lock(url) as held:
        assert lock_path(url).is_file() and held.took_over is None
        assert json.loads(lock_path(url).read_text())["pid"] == os.getpid()
        assert not url.exists()  # beside the store, never inside it
    assert not lock_path(url).exists()
    with pytest.raises(RuntimeError):
        with writer_lock(url):
            raise RuntimeError("boom")
    assert not lock_path(url).exists()


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    url = tmp_path / "cache.zarr"
    proc = _holder(url)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert lock_path(url).is_file()  # left behind by the killed holder
    assert current_holder(url) is None
    with writer_lock(url) as held:
        assert held.took_over["pid"] == proc.pid
        assert json.loads(lock_path(url).read_text())["token"] == held.holder["token"]
    assert not lock_path(url).exists()


def test_a_reused_pid_does_not_keep_a_stale_lock(tmp_path):
    """The record names a live process (this one) but another start time: its writer is gone."""
    url = tmp_path / "cache.zarr"
    lock_path(url).write_text(json.dumps({"emokd_lock": LOCK_TAG, "host": socket.gethostname(),
                                          "pid": os.getpid(), "pid_start": "1", "since": "then",
                                          "purpose": "extraction", "token": "old"}))
    with writer_lock(url) as held:
        assert held.took_over["token"] == "old"


def test_another_hosts_lock_counts_until_its_heartbeat_stops(tmp_path):
    url = tmp_path / "cache.zarr"
    path = lock_path(url)
    path.write_text(json.dumps({"emokd_lock": LOCK_TAG, "host": "elsewhere.example", "pid": 1,
                                "since": "2024-01-01T00:00:00", "purpose": "relabel", "token": "far"}))
    with pytest.raises(CacheLockedError, match=r"another relabel \(host elsewhere.example, pid 1"):
        with writer_lock(url, stale_after_s=60):
            pass
    old = time.time() - 120
    os.utime(path, (old, old))
    with writer_lock(url, stale_after_s=60) as held:
        assert held.took_over["host"] == "elsewhere.example"


def test_a_foreign_file_at_the_lock_path_is_refused_and_kept(tmp_path):
    url = tmp_path / "cache.zarr"
    lock_path(url).write_text("my notes\n")
    with pytest.raises(CacheError, match="not an emokd lock file"):
        with writer_lock(url):
            pass
    assert lock_path(url).read_text() == "my notes\n"


@pytest.mark.slow
def test_eight_processes_racing_for_one_lock(tmp_path):
    """Eight processes try at the same moment: exactly one holds it, the others are refused."""
    url, go = tmp_path / "cache.zarr", tmp_path / "go"
    race = ("import os, sys, time\nfrom emokd.cache.lock import writer_lock, CacheLockedError\n"
            "print('ready', flush=True)\nwhile not os.path.exists(sys.argv[2]): time.sleep(0.001)\n"
            "try:\n    with writer_lock(sys.argv[1]):\n        print('held', flush=True); time.sleep(1)\n"
            "except CacheLockedError:\n    print('refused')\n")
    procs = [subprocess.Popen([sys.executable, "-c", race, str(url), str(go)], stdout=subprocess.PIPE,
                              text=True) for _ in range(8)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    go.touch()
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs == ["held"] + ["refused"] * 7
    assert not lock_path(url).exists()
