"""Kills and concurrency, with real processes and real signals: SIGKILL of the driver at random moments
of a run, then the same command again; two drivers started together on one cache."""

import random
import socket
import subprocess
import time

import pytest
from click.testing import CliRunner

from emokd.cache import FeatureCache
from emokd.cli import main
from emokd.errors import EmokdError
from extract_support import assert_same_cache
from safety_support import assert_consistent, emokd_command, emokd_env, kill_group

pytestmark = pytest.mark.slow


def _complete(url) -> int:
    """Complete videos in the cache at `url` (0 while it is being created)."""
    try:
        return len(FeatureCache.open(str(url)).video_ids())
    except EmokdError:
        return 0


def _command(tree, url):   # every video in a shard of its own, so that kills fall between videos too
    return emokd_command("extract-features", tree.root, "--cache", url, "--workers", "1", "--no-progress",
                         "--pack-frames", "0")


def _groups(url) -> int:
    """Shards (one video each here) in the store, complete or being written."""
    try:
        return sum(1 for entry in (url / "shards").iterdir() if entry.is_dir())
    except FileNotFoundError:
        return 0


def test_sigkill_at_random_moments_then_rerun_equals_an_uninterrupted_run(safety_tree, safety_reference, tmp_path):
    """Six SIGKILLs of the driver's whole session (driver, nanny, worker), each rerun resuming the last:
    the first at a random moment of start-up, the others at a random moment after the next video
    began to be written (so that, however loaded the machine, the kills fall across the extraction
    itself: inside a video's writing, or between two videos). After each kill the cache holds only intact videos equal to the
    reference; the final run completes it equal, array for array, to an uninterrupted run."""
    url = tmp_path / "cache.zarr"
    rng = random.Random(20240601)
    total = len(safety_reference[1].video_ids())
    per_video_s = sum(safety_reference[2].timings.values()) / total  # worker seconds, as loaded as now
    states = []
    for attempt in range(6):
        proc = subprocess.Popen(_command(safety_tree, url), env=emokd_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        if attempt:
            target = min(_complete(url) + 1, total)  # the next video to be written
            while proc.poll() is None and _groups(url) < target:
                time.sleep(0.002)
            at = rng.uniform(0.0, 4 * per_video_s)  # the first video of a fresh worker is the slowest
        else:
            at = rng.uniform(0.2, 2.0)
        deadline = time.monotonic() + at
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        finished = proc.poll() is not None
        kill_group(proc)
        states.append((attempt and target, round(at, 3),
                       "finished first" if finished else assert_consistent(url, safety_reference[1])))
    result = CliRunner().invoke(main, _command(safety_tree, url)[3:])
    assert result.exit_code == 0, (result.output, states)
    final = FeatureCache.open(str(url))
    assert_same_cache(safety_reference[1], final)
    assert final.verify() == [] and final.failures() == {}
    assert final.video_ids(include_incomplete=True) == final.video_ids()
    assert not (tmp_path / "cache.zarr.lock").exists()
    print("kills (video group waited for, delay s, what they left):", states)
    partial = [s for _, _, s in states if s.endswith("incomplete") and not s.startswith(f"{total} complete")]
    assert len(partial) >= 3, states  # the kills met the extraction in the middle


def test_two_drivers_started_together_one_refuses_cleanly(safety_tree, safety_reference, tmp_path):
    """Problem: two drivers at once gave tracebacks, videos failed in both, and failure records that
    outlived the videos' completion. Now one driver holds the writer lock; the other exits 2 at once
    with one line naming the holder."""
    url = tmp_path / "cache.zarr"
    procs = [subprocess.Popen(_command(safety_tree, url), env=emokd_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    codes = [proc.returncode for proc in procs]
    assert sorted(codes) == [0, 2], outputs
    winner, loser = (procs[0], procs[1]) if codes[0] == 0 else (procs[1], procs[0])
    refusal = outputs[procs.index(loser)]
    assert "Traceback" not in refusal and len(refusal.strip().splitlines()) == 1, refusal
    assert refusal.startswith(f"error: another extraction (host {socket.gethostname()}, pid {winner.pid}, since ")
    assert "is writing this cache" in refusal
    assert "4 extracted" in outputs[procs.index(winner)]
    cache = FeatureCache.open(str(url))
    assert_same_cache(safety_reference[1], cache)
    assert cache.verify() == []
    info = CliRunner().invoke(main, ["cache", "info", str(url)])
    assert "failed       0" in info.output and "incomplete   0" in info.output, info.output
