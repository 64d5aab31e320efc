"""`emokd extract-features` end to end on a tiny generated Aff-Wild2 tree, with the real default weights.

One uninterrupted one-worker run is the reference; the other runs (killed and resumed, two workers,
an existing cluster started as separate processes) must give the same cache, array for array.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from emokd.cli import main
from extract_support import assert_same_cache, dask_processes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, default_weights):  # default_weights: tests/extract/conftest.py
    """solo (crops with gaps, fewer label lines than frames), duo_left/duo_right (one AVI file),
    nocrop (no crop folder, no audio), broken (a corrupt .mp4)."""
    from emokd.testing.affwild2_tree import write_affwild2_tree
    from emokd.testing.affwild2_tree import TreeVideo

    root = tmp_path_factory.mktemp("extract") / "data"
    tree = write_affwild2_tree(root, [
        TreeVideo("solo", 45, 30, crop_gaps=(3, 17), label_lines=40, audio="speechlike", size=(96, 96)),
        TreeVideo("duo", 36, 25, ".avi", "mpeg4", persons=("left", "right"), audio="speechlike",
                  splits={"VA": "validation", "EXPR": "validation", "AU": "validation"}, size=(96, 96)),
        TreeVideo("nocrop", 30, 30, ".mov", folder="batch2", audio=None, size=(96, 96)),
    ])
    shutil.rmtree(root / "cropped_aligned" / "nocrop")
    (root / "batch2" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    return tree


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    """One uninterrupted run with one worker."""
    from emokd.cache import FeatureCache
    from emokd.extract.driver import run_extraction
    from emokd.extract.config import ExtractConfig
    from emokd.index.dataset import index_dataset

    url = str(tmp_path_factory.mktemp("ref") / "cache.zarr")
    items = index_dataset(dataset.root).items
    summary = run_extraction(items, url, ExtractConfig(workers=1), progress=False)
    return summary, FeatureCache.open(url), url


def test_tiny_dataset_arrays_flags_labels_and_failure(dataset, reference):
    from emokd.extract.faces import load_crop
    from emokd.extract.config import ExtractConfig
    from emokd.extract.encoders import load_encoders

    summary, cache, _ = reference
    assert (summary.total, summary.done, summary.failed, summary.skipped) == (5, 4, 1, 0)
    assert summary.frames == 45 + 36 + 36 + 30
    assert sorted(cache.video_ids()) == ["duo_left", "duo_right", "nocrop", "solo"]
    assert "broken" in cache.failures() and "broken.mp4" in cache.failures()["broken"]
    assert "broken" not in cache.video_ids(include_incomplete=True)
    assert cache.feature_dims == {"fer_pyemotion-embedding": 256, "soundnet8-conv8": 1000}
    assert cache.verify() == []
    assert cache.info()["packed_shards"] == 1   # short videos are packed: one shard for the four

    shapes = {"face": (256,), "audio": (1000,), "face_ok": (), "audio_ok": (), "pts": ()}
    for vid, n, fps in (("solo", 45, 30), ("duo_left", 36, 25), ("duo_right", 36, 25), ("nocrop", 30, 30)):
        arrays = cache.read_video(vid)
        for name, tail in shapes.items():  # every array of the item, n rows each
            assert arrays[name].shape == (n, *tail), (vid, name)
        np.testing.assert_allclose(arrays["pts"], np.arange(n) / fps, atol=1e-6)
        # rows without a face are zeros; rows with one are not
        assert not arrays["face"][~arrays["face_ok"]].any()
        assert (np.abs(arrays["face"][arrays["face_ok"]]).sum(axis=1) > 0).all()

    solo = cache.read_video("solo")
    np.testing.assert_array_equal(np.flatnonzero(~solo["face_ok"]), [3, 17])
    assert solo["audio_ok"].all() and cache.read_video("duo_left")["audio_ok"].all()
    nocrop = cache.read_video("nocrop")
    assert cache.video_attrs("nocrop")["face_source"] == "detector"
    assert not nocrop["audio_ok"].any() and not nocrop["audio"].any()  # no audio stream
    assert cache.video_attrs("duo_left")["pts_source"].startswith("index/fps")  # AVI stores no usable frame times

    # row k is frame k: the cached face of frame 20 is the encoder's output on crop 00021.jpg
    enc = load_encoders(ExtractConfig().resolved())
    crop = load_crop(dataset.root / "cropped_aligned" / "solo", 20, 112)
    np.testing.assert_allclose(solo["face"][20].astype(np.float32), enc.face.encode_numpy(crop[None])[0],
                               rtol=1e-2, atol=1e-2)
    right = load_crop(dataset.root / "cropped_aligned" / "duo_right", 7, 112)
    np.testing.assert_allclose(cache.read_video("duo_right")["face"][7].astype(np.float32),
                               enc.face.encode_numpy(right[None])[0], rtol=1e-2, atol=1e-2)
    # the two persons share the audio track, not the faces
    np.testing.assert_array_equal(cache.read_video("duo_left")["audio"], cache.read_video("duo_right")["audio"])

    labels = cache.read_labels("solo")
    truth = dataset.truth["solo"]
    np.testing.assert_array_equal(labels["expr"][:40], truth["expr"])
    np.testing.assert_array_equal(labels["au"][:40], truth["au"])
    np.testing.assert_allclose(labels["va"][:40], truth["va"])
    assert (labels["expr"][40:] == -1).all() and np.isnan(labels["va"][40:]).all()
    assert labels["split"] == "train"
    for person in ("duo_left", "duo_right"):
        got = cache.read_labels(person)
        np.testing.assert_array_equal(got["expr"], dataset.truth[person]["expr"])
        assert got["split"] == "validation"
    np.testing.assert_array_equal(cache.read_labels("nocrop")["au"], dataset.truth["nocrop"]["au"])


def test_small_batches_and_audio_chunks_keep_rows_aligned(dataset, reference, tmp_path, monkeypatch):
    """The task in this process with batches of 5 frames and audio chunks of 7 frames gives the
    reference run's rows (batches of 64, one audio chunk): row k stays frame k across chunk edges."""
    from emokd.cache import FeatureCache
    from emokd.extract import task as extract
    from emokd.extract.driver import prepare_cache
    from emokd.extract.config import ExtractConfig
    from emokd.extract.task import extract_video
    from emokd.index.dataset import index_dataset

    monkeypatch.setattr(extract, "AUDIO_CHUNK_FRAMES", 7)
    items = [i for i in index_dataset(dataset.root).items if i.video_id in ("solo", "duo_right")]
    cfg = ExtractConfig(batch_size=5).resolved()
    url = str(tmp_path / "cache.zarr")
    _, plan = prepare_cache(items, url, cfg)
    for item in items:
        result = extract_video(item, url, cfg, plan.settings)
        assert result["status"] == "done", result["error"]
        assert set(result["timings"]) >= {"probe", "audio_encode", "face_encode", "faces_in", "write"}
    cache = FeatureCache.open(url)
    for item in items:
        got, ref = cache.read_video(item.video_id), reference[1].read_video(item.video_id)
        for name in ("face_ok", "audio_ok", "pts"):
            np.testing.assert_array_equal(got[name], ref[name])
        for name in ("face", "audio"):
            a, b = got[name].astype(np.float32), ref[name].astype(np.float32)
            scale = np.abs(b).max(axis=1, keepdims=True) + 1e-6
            assert (np.abs(a - b) / scale).max() < 2e-3, (item.video_id, name)
    # a complete video is skipped; deleted from the cache, it is extracted again, to the same arrays
    assert extract_video(items[0], url, cfg, plan.settings)["status"] == "skipped"
    before = FeatureCache.open(url).read_video(items[0].video_id)
    FeatureCache.open(url, mode="r+").delete_video(items[0].video_id)
    assert not FeatureCache.open(url).is_complete(items[0].video_id)
    again = extract_video(items[0], url, cfg, plan.settings)
    assert again["status"] == "done" and FeatureCache.open(url).is_complete(items[0].video_id)
    after = FeatureCache.open(url).read_video(items[0].video_id)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def _cli(dataset, url, *extra):
    return [sys.executable, "-m", "emokd", "extract-features", str(dataset.root), "--cache", str(url),
            "--workers", "1", "--no-progress", *extra]


def test_kill_and_resume_equals_uninterrupted(dataset, reference, tmp_path):
    from emokd.cache import FeatureCache

    url = tmp_path / "cache.zarr"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(_cli(dataset, url, "--pack-frames", "0"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    complete: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while not complete:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no video completed in 120 s"
            try:
                complete = FeatureCache.open(str(url)).video_ids()
            except Exception:  # not created yet, or its metadata being written right now
                pass
            time.sleep(0.02)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the driver, its nanny and its worker
        proc.wait(timeout=30)
    killed = FeatureCache.open(str(url))
    after_kill = killed.video_ids()
    assert 1 <= len(after_kill) < 4, "the run finished before it could be killed"
    assert len(killed.video_ids(include_incomplete=True)) - len(after_kill) <= 1  # one worker: <= 1 in flight
    for vid in after_kill:
        for name, value in killed.read_video(vid).items():
            np.testing.assert_array_equal(value, reference[1].read_video(vid)[name])

    failed_before = "broken" in killed.failures()  # a known-bad video is not decoded again
    rerun = CliRunner().invoke(main, _cli(dataset, url, "--pack-frames", "0")[3:])  # the same command, here
    assert rerun.exit_code == (0 if failed_before else 1), rerun.output  # else the corrupt video fails now
    assert f"{len(after_kill)} already complete" in rerun.output
    assert ("1 failed earlier, not retried" if failed_before else "1 failed") in rerun.output
    resumed = FeatureCache.open(str(url))
    assert_same_cache(reference[1], resumed)
    assert resumed.video_ids(include_incomplete=True) == resumed.video_ids()
    assert list(resumed.failures()) == ["broken"]
    logs = sorted(url.with_name(url.name + ".emokd").glob("extract-*.log"))   # beside the store, not in it
    assert len(logs) == 2 and logs[-1].read_text().count("broken failed") == (0 if failed_before else 1)


def test_two_workers_write_one_store(dataset, reference, tmp_path):
    from emokd.cache import FeatureCache
    from emokd.extract.driver import run_extraction
    from emokd.extract.config import ExtractConfig
    from emokd.index.dataset import index_dataset

    url = str(tmp_path / "cache.zarr")
    summary = run_extraction(index_dataset(dataset.root).items, url, ExtractConfig(workers=2), progress=False)
    assert (summary.done, summary.failed) == (4, 1)
    cache = FeatureCache.open(url)
    assert cache.verify() == []
    assert_same_cache(reference[1], cache)


def test_a_dying_worker_fails_its_video_only(dataset, reference, tmp_path):
    """The worker process exits whenever it extracts "solo" (as if killed for memory): after one retry
    (Dask's allowed-failures, 3 by default) that video is recorded as failed (task lost); the nanny
    starts new workers, and the other videos, including those queued on the dead worker, finish
    equal to the reference."""
    import dask

    from emokd.cache import FeatureCache
    from emokd.extract.driver import run_extraction
    from emokd.extract.config import ExtractConfig
    from emokd.index.dataset import index_dataset

    from extract_support import dies_on_solo

    url = str(tmp_path / "cache.zarr")
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        summary = run_extraction(index_dataset(dataset.root).items, url, ExtractConfig(workers=1, pack_frames=0),
                                 progress=False, task=dies_on_solo)
    # a result held by the dead worker is recomputed: the task then finds its video complete (skipped)
    assert (summary.done + summary.skipped, summary.failed) == (3, 2)
    assert "task lost" in summary.failures["solo"] and "broken.mp4" in summary.failures["broken"]
    cache = FeatureCache.open(url)
    assert sorted(cache.failures()) == ["broken", "solo"]
    assert "solo" not in cache.video_ids(include_incomplete=True)
    for vid in ("duo_left", "duo_right", "nocrop"):
        for name, value in cache.read_video(vid).items():
            np.testing.assert_array_equal(value, reference[1].read_video(vid)[name])


def test_changed_setting_is_refused_and_dry_run_writes_nothing(dataset, reference):
    _, cache, url = reference
    before = sorted(os.listdir(url))
    result = CliRunner().invoke(main, ["extract-features", str(dataset.root), "--cache", url,
                                       "--window-s", "9.9", "--no-progress"])
    assert result.exit_code == 2
    assert "window_s" in result.output and "cache has 10, requested 9.9" in result.output
    dry = CliRunner().invoke(main, ["extract-features", str(dataset.root), "--cache", url, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "4 already complete" in dry.output and "0 to extract, 1 failed earlier, not retried" in dry.output
    retry = CliRunner().invoke(main, ["extract-features", str(dataset.root), "--cache", url, "--dry-run",
                                      "--retry-failed"])
    assert "1 to extract" in retry.output and "broken" in retry.output
    mode = cache.settings["audio_mode"]
    other = {"shared-trunk": "per-window", "per-window": "shared-trunk"}[mode]
    dry_changed = CliRunner().invoke(main, ["extract-features", str(dataset.root), "--cache", url, "--dry-run",
                                            "--audio-mode", other])
    assert dry_changed.exit_code == 2 and f'audio_mode: cache has "{mode}"' in dry_changed.output
    assert sorted(os.listdir(url)) == before


def test_overwrite_replaces_a_cache_made_with_other_settings(dataset, reference, tmp_path):
    from emokd.cache import FeatureCache

    copy = tmp_path / "cache.zarr"
    shutil.copytree(reference[2], copy)
    result = CliRunner().invoke(main, ["extract-features", str(dataset.root), "--cache", str(copy),
                                       "--window-s", "9.9", "--overwrite", "--limit", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    cache = FeatureCache.open(str(copy))
    assert cache.settings["window_s"] == 9.9 and cache.fingerprint != reference[1].fingerprint
    assert cache.config["limit"] == 1 and cache.config["window_s"] == 9.9  # the resolved config is kept
    (vid,) = cache.video_ids()
    assert cache.failures() == {}
    new, old = cache.read_video(vid), reference[1].read_video(vid)
    np.testing.assert_array_equal(new["face"], old["face"])  # the window only changes audio features
    assert not np.array_equal(new["audio"], old["audio"])
    assert list(copy.with_name(copy.name + ".emokd").glob("extract-*.yaml"))


def test_existing_cluster_by_address(dataset, reference, tmp_path):
    from emokd.cache import FeatureCache

    url = tmp_path / "cache.zarr"
    with dask_processes(tmp_path / "dask", n_workers=2) as (address, procs):
        result = CliRunner().invoke(main, ["extract-features", str(dataset.root), "--cache", str(url),
                                           "--scheduler", address, "--no-progress"])
        assert result.exit_code == 1, result.output  # the corrupt video
        assert "4 extracted" in result.output and "1 failed" in result.output
        from distributed import Client

        with Client(address) as client:
            pids = client.run(os.getpid)
            threads = client.run(torch.get_num_threads)
        assert set(threads.values()) == {1}, threads  # one torch thread per worker process
    # shard tasks on 2 workers, yet each worker built its encoders once (its log line, which
    # the task hands to the driver, says so in the run's log file)
    builds = Counter(re.search(r"built encoders .* \(process (\d+)\)", line).group(1)
                     for log in url.with_name(url.name + ".emokd").glob("extract-*.log")
                     for line in log.read_text().splitlines() if "built encoders" in line)
    builds.pop(str(os.getpid()), None)  # the driver's own copy (for the encoder records), not a worker's
    assert len(pids) == 2 and set(builds) <= {str(pid) for pid in pids.values()}, (builds, pids)
    assert len(builds) >= 1 and set(builds.values()) == {1}, builds
    for proc in procs:
        assert proc.poll() is not None
    assert_same_cache(reference[1], FeatureCache.open(str(url)))
