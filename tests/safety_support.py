"""Helpers of the data-safety tests: file snapshots, a consistent-cache check, killing a command at a
chosen moment, read-only folders and small filesystems (real mounts where the test runs as root)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest


def emokd_command(*args) -> list[str]:
    """The `emokd` command line, run as a separate process with this checkout's package."""
    return [sys.executable, "-m", "emokd", *map(str, args)]


def emokd_env(**extra) -> dict:
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=root + (os.pathsep + path if path else ""), **extra)


def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under `folder` (what "nothing touched" compares)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_consistent(url: Path, reference) -> str:
    """The store at `url` is never wrong: absent, an interrupted creation, or a cache whose complete
    videos are intact and equal to `reference`'s; returns which of these it is."""
    import zarr

    from emokd.cache import FeatureCache

    if not (url / "zarr.json").is_file():
        return "absent"
    if not dict(zarr.open_group(str(url), mode="r").attrs):
        return "interrupted creation"
    cache = FeatureCache.open(str(url))
    assert cache.fingerprint == reference.fingerprint
    for vid in cache.video_ids():
        assert cache.video_defects(vid) == [], vid
        got, want = cache.read_video(vid), reference.read_video(vid)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{vid}/{name}")
    assert all("incomplete" in line for line in cache.verify()), cache.verify()
    n = len(cache.video_ids())
    return f"{n} complete, {len(cache.video_ids(include_incomplete=True)) - n} incomplete"


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the command and every process it started (its session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0, poll_s: float = 0.0005) -> bool:
    """SIGKILL `proc`'s session as soon as `ready()` is true; False when the command ended first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if ready():
            kill_group(proc)
            return True
        assert time.monotonic() < deadline, "the moment to kill never came"
        time.sleep(poll_s)
    return False


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` read-only for this process: a read-only bind mount as root (whom permission bits do
    not stop), permission bits otherwise. Skips the test where neither is possible."""
    folder = Path(folder)
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield folder
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if not (_mount("--bind", str(folder), str(folder)) and _mount("-o", "remount,ro,bind", str(folder))):
        subprocess.run(["umount", str(folder)], capture_output=True)
        pytest.skip("cannot make a read-only mount here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextlib.contextmanager
def small_filesystem(folder: Path, size: str):
    """A tmpfs of `size` (e.g. "400k") mounted at `folder`: a real full disk. Skips where mounting is
    not allowed (not root)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)):
        pytest.skip("cannot mount a small filesystem here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def grow(folder: Path, size: str) -> None:
    """Make room on a `small_filesystem`."""
    assert _mount("-o", f"remount,size={size}", str(folder))


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
