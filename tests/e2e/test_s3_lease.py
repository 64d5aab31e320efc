"""The writer lease of a cache on S3 (emokd/cache/lease.py), against a real S3 server on loopback:
one holder at a time, the refusal names the holder, a live holder is never taken over, a killed
one's lease expires, a holder that was taken over finds out, and two drivers racing for one cache."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from click.testing import CliRunner

from emokd.cache.lease import LeaseHeld, LeaseLost, ObjectLease, lease_url
from emokd.cache.lock import CacheLockedError, writer_lock
from emokd.cli import main


def _holder_process(url: str, env: dict, ttl_s: float) -> subprocess.Popen:
    """Another process that takes the lease and keeps renewing it until killed."""
    code = textwrap.dedent(f"""
        import time
        from emokd.cache.lease import ObjectLease
        ObjectLease({url!r}, ttl_s={ttl_s}, heartbeat_s={ttl_s / 6}).acquire()
        print("held", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, **env}, start_new_session=True)
    line = proc.stdout.readline().decode()
    assert line.strip() == "held", line + proc.stdout.read().decode()
    return proc


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_refusal_names_the_holder_and_a_live_holder_is_never_taken_over(s3, bucket):
    url = f"{bucket}/c.zarr"
    holder = _holder_process(url, s3.env, ttl_s=2.5)
    try:
        started = time.monotonic()
        while time.monotonic() - started < 6.0:  # more than twice the lease's lifetime
            with pytest.raises(LeaseHeld) as refused:
                ObjectLease(url, ttl_s=2.5).acquire()
            time.sleep(0.5)
        text = str(refused.value)
        assert f"host {socket.gethostname()}, pid {holder.pid}, since 20" in text
        assert f"another extraction (host {socket.gethostname()}" in text and lease_url(url) in text
        record = json.loads(s3.filesystem().cat_file(lease_url(url).split("://")[1]))
        assert (record["host"], record["pid"], record["format"], record["purpose"]) == (
            socket.gethostname(), holder.pid, "emokd writer lease", "extraction")
    finally:
        _kill(holder)


def test_a_killed_holders_lease_expires_and_is_taken_over(s3, bucket):
    url = f"{bucket}/c.zarr"
    holder = _holder_process(url, s3.env, ttl_s=2.0)
    _kill(holder)
    killed = time.monotonic()
    with pytest.raises(CacheLockedError, match=f"pid {holder.pid}"):
        with writer_lock(url, stale_after_s=2.0):  # not yet expired: refused at once, no waiting
            pass
    with writer_lock(url, stale_after_s=2.0, heartbeat_s=0.5, wait_s=10.0) as held:
        waited = time.monotonic() - killed
        now = ObjectLease(url).holder()
        assert now.token == held.holder["token"] and now.record["pid"] == os.getpid()
        assert held.took_over["pid"] == holder.pid and held.where == lease_url(url)
        assert 1.0 <= waited <= 15.0, waited  # 2 s counted from the last renewal, on 1 s clocks
    assert ObjectLease(url).holder() is None  # released: deleted


def test_exactly_one_of_racing_drivers_wins(s3, bucket):
    url = f"{bucket}/c.zarr"
    for _round in range(3):
        barrier = threading.Barrier(4)
        results: list = []

        def contend():
            lease = ObjectLease(url, ttl_s=30)
            barrier.wait()
            try:
                results.append(lease.acquire())
            except LeaseHeld as exc:
                results.append(exc)

        threads = [threading.Thread(target=contend) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        winners = [r for r in results if isinstance(r, ObjectLease)]
        assert len(results) == 4 and len(winners) == 1, results
        assert winners[0].holder().token == winners[0].token
        winners[0].release()


def test_a_holder_whose_lease_was_taken_over_stops(s3, bucket):
    url = f"{bucket}/c.zarr"
    first = ObjectLease(url, ttl_s=1.0, heartbeat_s=0.2).acquire()
    first._stop.set()  # as if suspended: no renewal, so its lease expires
    first._thread.join()
    time.sleep(2.1)
    second = ObjectLease(url, ttl_s=1.0).acquire()
    first._stop.clear()
    first._renew_once()  # its next renewal finds another token there
    with pytest.raises(LeaseLost, match="taken over"):
        first.check()
    first.release()  # must not delete the successor's lease
    assert second.holder().token == second.token
    second.check()
    second.release()


def test_the_lease_lives_outside_the_store(s3, bucket):
    from cache_support import ENCODERS, SETTINGS, video_values, write_video
    from emokd.cache import FeatureCache

    url = f"{bucket}/data/c.zarr"
    fs = s3.filesystem()
    with ObjectLease(url, ttl_s=30) as lease:
        cache = FeatureCache.create(url, SETTINGS, {}, ENCODERS)
        write_video(cache, "a/1", video_values(20, 1))
        renewed = FeatureCache.create(url, {**SETTINGS, "crop_size": 96}, {}, ENCODERS, overwrite=True)
        assert lease.holder().token == lease.token  # --overwrite empties the store, never the lease
        assert renewed.video_ids(include_incomplete=True) == [] and renewed.settings["crop_size"] == 96
        assert fs.ls(f"{bucket[5:]}/data") == [f"{bucket[5:]}/data/c.zarr", f"{bucket[5:]}/data/c.zarr.lease"]
        assert not [key for key in fs.find(f"{bucket[5:]}/data/c.zarr") if "lease" in key]  # none inside
        assert sorted(dict(FeatureCache.open(url).root.members())) == ["failures", "shards", "soft"]


@pytest.mark.slow
def test_two_drivers_race_for_one_cache_on_s3(s3, bucket, clips, tmp_path):
    """A runs; B refuses naming A's host, pid and start; A is SIGKILLed; C waits for A's lease to
    expire, then extracts everything."""
    from emokd.cache import FeatureCache

    url = f"{bucket}/race.zarr"
    (tmp_path / "refuse.toml").write_text("lock_expiry_s = 3.0\n")
    (tmp_path / "wait.toml").write_text("lock_expiry_s = 3.0\nlock_wait_s = 30.0\n")
    args = ["extract-features", str(clips.url_manifest), "--cache", url, "--workers", "1",
            "--face-source", "whole-frame", "--no-progress", "--config"]
    first = subprocess.Popen([sys.executable, "-m", "emokd", *args, str(tmp_path / "refuse.toml")], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env={**os.environ, **s3.env}, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while ObjectLease(url).holder() is None:
            assert first.poll() is None, first.stdout.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = CliRunner().invoke(main, [*args, str(tmp_path / "refuse.toml")])
        assert second.exit_code == 2, second.output
        assert f"host {socket.gethostname()}, pid {first.pid}, since 20" in second.output
        assert "another extraction (host" in second.output and "is writing this cache" in second.output
    finally:
        _kill(first)  # the driver and its local workers
    killed = time.monotonic()
    third = CliRunner().invoke(main, [*args, str(tmp_path / "wait.toml")])
    assert third.exit_code == 0, third.output
    assert time.monotonic() - killed >= 1.0  # it waited for the dead driver's lease to expire
    cache = FeatureCache.open(url)
    assert len(cache.video_ids()) == len(clips.names) and cache.verify() == []
    assert ObjectLease(url).holder() is None

