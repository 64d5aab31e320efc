"""Errors a user's machine causes are one line, exit 2, no traceback: a full disk (at the start, or in
the middle of a run, which then stops cleanly with its summary and resumes on the rerun), a file-size
limit, a read-only cache for extraction and relabelling."""

import resource
import subprocess

import pytest
from click.testing import CliRunner

from emokd.cache import FeatureCache
from emokd.cli import main
from extract_support import assert_same_cache
from safety_support import emokd_command, emokd_env, grow, read_only, small_filesystem, snapshot

pytestmark = pytest.mark.slow


def _command(tree, url, *extra):
    return emokd_command("extract-features", tree.root, "--cache", url, "--workers", "1", "--no-progress", *extra)


def _run(command, limit_bytes=None):
    """The command as a separate process, optionally under a file-size limit (RLIMIT_FSIZE: every write
    past it fails with EFBIG, as a full disk fails with ENOSPC)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(command, env=emokd_env(), capture_output=True, text=True, timeout=600,
                          preexec_fn=limit if limit_bytes else None)


def _assert_stopped_cleanly(proc, *words):
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text and "--- Logging error ---" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, text
    for word in words:
        assert word in errors[0], text
    return text


def test_a_write_limit_mid_run_stops_cleanly_and_the_rerun_resumes(safety_tree, safety_reference, tmp_path):
    """Problem: a full disk at the start, or mid-run, gave tracebacks ("--- Logging error ---"
    blocks and no summary). With every write past 100 bytes failing, the run is refused at once in
    one line; with writes past 40 kB failing (a video's audio chunk is 60 kB) it stops at the first
    one, prints its summary and one error line; the same command then completes the cache."""
    url = tmp_path / "cache.zarr"
    _assert_stopped_cleanly(_run(_command(safety_tree, url), limit_bytes=100), "File too large")  # at the start
    assert not url.exists()
    stopped = _assert_stopped_cleanly(_run(_command(safety_tree, url), limit_bytes=40_000),
                                      "the run stopped", "File too large", "run the same command again to resume")
    assert "4 items: 0 extracted, 0 already complete, 0 failed" in stopped
    cache = FeatureCache.open(str(url))
    assert cache.failures() == {} and cache.video_ids() == []  # nothing recorded as a bad video
    rerun = _run(_command(safety_tree, url))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert_same_cache(safety_reference[1], FeatureCache.open(str(url)))


def test_a_full_disk_at_the_start_and_in_the_middle(safety_tree, safety_reference, tmp_path):
    """A real full disk (a small tmpfs; needs root): at the start, one line and nothing half made;
    mid-run, a clean stop; once there is room, the same command ends equal to an uninterrupted run."""
    with small_filesystem(tmp_path / "disk", "4k") as disk:
        url = disk / "cache.zarr"
        _assert_stopped_cleanly(_run(_command(safety_tree, url)), "No space left on device")
        grow(disk, "300k")
        text = _assert_stopped_cleanly(_run(_command(safety_tree, url)), "the run stopped", "No space left on device")
        assert "4 items: " in text
        done = FeatureCache.open(str(url)).video_ids()
        assert len(done) < 4 and FeatureCache.open(str(url)).failures() == {}
        grow(disk, "64m")
        rerun = _run(_command(safety_tree, url))
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert f"{len(done)} already complete" in rerun.stdout
        assert_same_cache(safety_reference[1], FeatureCache.open(str(url)))


def test_a_read_only_cache_is_refused_before_any_work(safety_tree, reference_copy):
    """Problem: extract and relabel on a read-only cache ended in tracebacks."""
    before = snapshot(reference_copy)
    with read_only(reference_copy):
        for args in (["extract-features", safety_tree.root, "--cache", reference_copy, "--no-progress"],
                     ["cache", "relabel", safety_tree.root, reference_copy]):
            result = CliRunner().invoke(main, [*map(str, args)])
            assert result.exit_code == 2 and "Traceback" not in result.output, result.output
            assert f"error: {reference_copy}: read-only" in result.output
        info = CliRunner().invoke(main, ["cache", "verify", str(reference_copy)])
        assert info.exit_code == 0, info.output  # reading still works
    assert snapshot(reference_copy) == before
