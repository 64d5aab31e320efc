"""Source identity and failed videos: a replaced source is re-extracted (and `verify --sources` lists it
first), a touched one is not; a known-bad video is not decoded again unless asked or changed."""

import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from emokd.cache import FeatureCache
from emokd.cli import main

pytestmark = pytest.mark.slow


def _video(name, n):
    from emokd.testing.affwild2_tree import TreeVideo

    return TreeVideo(name, n, 30, audio="speechlike", size=(96, 96))


def _cli(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def _extract(root, url, *extra):
    return _cli("extract-features", root, "--cache", url, "--no-progress", *extra)


def test_a_replaced_source_video_is_extracted_again(tmp_path, default_weights):
    """Problem: a video rewritten from 45 to 90 frames kept its old features, "complete"."""
    from emokd.testing.affwild2_tree import write_affwild2_tree

    tree = write_affwild2_tree(tmp_path / "data", [_video("solo", 45), _video("other", 24)])
    url = tmp_path / "cache.zarr"
    assert _extract(tree.root, url).exit_code == 0
    video = tree.root / "batch1" / "solo.mp4"
    recorded = FeatureCache.open(str(url)).video_attrs("solo")["source"]
    assert recorded["size"] == video.stat().st_size and len(recorded["head_tail_sha256"]) == 64

    # touched (same bytes, new mtime), as a copy without -p does: the same source, nothing redone
    stat = video.stat()
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert _cli("cache", "verify", url, "--sources").exit_code == 0
    same = _extract(tree.root, url)
    assert same.exit_code == 0 and "2 already complete" in same.output and "changed" not in same.output

    # rewritten with 90 frames (and its crops and labels), in place
    new = write_affwild2_tree(tmp_path / "new", [_video("solo", 90)])
    shutil.copy(new.root / "batch1" / "solo.mp4", video)
    shutil.rmtree(tree.root / "cropped_aligned" / "solo")
    shutil.copytree(new.root / "cropped_aligned" / "solo", tree.root / "cropped_aligned" / "solo")
    for task_file in new.root.glob("annotations/*/*/solo.txt"):
        shutil.copy(task_file, tree.root / task_file.relative_to(new.root))
    stale = _cli("cache", "verify", url, "--sources")
    assert stale.exit_code == 1, stale.output
    assert f"item 'solo': stale: {video} changed size" in stale.output and "'other'" not in stale.output

    rerun = _extract(tree.root, url)
    assert rerun.exit_code == 0, rerun.output
    assert "1 extracted, 1 already complete" in rerun.output and "re-extracted 1 changed items" in rerun.output
    cache = FeatureCache.open(str(url))
    assert cache.n_frames("solo") == 90 and cache.verify() == []
    assert _cli("cache", "verify", url, "--sources").exit_code == 0
    fresh_url = tmp_path / "fresh.zarr"
    assert _extract(new.root, fresh_url).exit_code == 0  # the new file extracted on its own
    fresh = FeatureCache.open(str(fresh_url)).read_video("solo")
    for name, values in cache.read_video("solo").items():
        np.testing.assert_array_equal(values, fresh[name], err_msg=name)
    np.testing.assert_array_equal(cache.read_labels("solo")["expr"], new.truth["solo"]["expr"])


def test_a_known_bad_video_is_skipped_until_retried_or_changed(tmp_path, default_weights):
    """Problem: a known-bad video was decoded again on every rerun, and every rerun exited 1."""
    from emokd.testing.affwild2_tree import write_affwild2_tree

    tree = write_affwild2_tree(tmp_path / "data", [_video("good", 24)])
    broken = tree.root / "batch1" / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    url = tmp_path / "cache.zarr"

    first = _extract(tree.root, url)
    assert first.exit_code == 1 and "1 failed" in first.output
    log = FeatureCache.open(str(url)).failure_log()
    assert log["broken"]["attempts"] == 1 and log["broken"]["source"]["size"] == broken.stat().st_size

    again = _extract(tree.root, url)
    assert again.exit_code == 0, again.output
    assert "0 failed" in again.output and "1 failed earlier, not retried" in again.output
    assert FeatureCache.open(str(url)).failure_log()["broken"]["attempts"] == 1  # not decoded again
    assert "broken: failed in an earlier run" in sorted(url.parent.glob(url.name + ".emokd/extract-*.log"))[-1].read_text()

    retried = _extract(tree.root, url, "--retry-failed")
    assert retried.exit_code == 1 and "1 failed" in retried.output
    assert FeatureCache.open(str(url)).failure_log()["broken"]["attempts"] == 2

    # the file is replaced by a good one: retried without being asked, and its failure record goes
    fixed = write_affwild2_tree(tmp_path / "fixed", [_video("broken", 24)])
    shutil.copy(fixed.root / "batch1" / "broken.mp4", broken)
    shutil.copytree(fixed.root / "cropped_aligned" / "broken", tree.root / "cropped_aligned" / "broken")
    healed = _extract(tree.root, url)
    assert healed.exit_code == 0, healed.output
    assert "1 extracted" in healed.output and "re-extracted 1 changed items" in healed.output
    cache = FeatureCache.open(str(url))
    assert sorted(cache.video_ids()) == ["broken", "good"] and cache.failures() == {}
    info = _cli("cache", "info", url)
    assert "failed       0" in info.output


def test_a_failure_record_never_outlives_the_video(tmp_path):
    """A failure reported after another attempt completed the video is not recorded; a video that
    completes later loses its record."""
    from cache_support import ENCODERS, SETTINGS, video_values, write_video

    cache = FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {}, ENCODERS)
    write_video(cache, "done", video_values(10, 0))
    assert cache.record_failure("done", "a late report of a lost attempt") is False
    assert cache.failures() == {}
    assert cache.record_failure("later", "failed once", {"path": "/x", "size": 3}) is True
    assert cache.failure_log()["later"]["source"] == {"path": "/x", "size": 3}
    write_video(cache, "later", video_values(10, 1))
    assert cache.failures() == {}
