"""The whole job against a real S3 server (moto, a separate process on loopback): videos in the
bucket, an external `dask scheduler` with two `dask worker` processes extracting into a cache in the
bucket, the driver SIGKILLed mid-run and run again; training, evaluation and prediction reading it
back. Everything must equal the same job on local disk, array for array and metric for metric."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from emokd.cli import main
from emokd.train.runs import RunDir
from extract_support import assert_same_cache, dask_processes

pytestmark = pytest.mark.slow


def _extract_args(manifest, cache, address, config):
    return ["extract-features", str(manifest), "--cache", str(cache), "--scheduler", address,
            "--face-source", "whole-frame", "--no-progress", "--config", str(config)]


def _complete_ids(url):
    from emokd.cache import FeatureCache

    with contextlib.suppress(Exception):  # not created yet, or being created right now
        return FeatureCache.open(url).video_ids()
    return []


def test_cluster_job_on_s3_equals_local_disk(s3, bucket, clips, tmp_path):
    from emokd.cache import FeatureCache

    config = tmp_path / "extract.toml"
    config.write_text("lock_expiry_s = 3.0\nlock_wait_s = 20.0\n")
    local_url, s3_url = tmp_path / "local.zarr", f"{bucket}/caches/clips.zarr"
    fs = s3.filesystem()
    copies = {name: f"{bucket}/videos/{name}.mp4" for name in clips.names}  # this test's own objects
    for name, url in copies.items():
        fs.copy(clips.urls[name][5:], url[5:])
    urls = tmp_path / "urls.csv"  # the copies, and one object that is not there
    urls.write_text(clips.url_manifest.read_text().replace("s3://emokd-videos/clips/", f"{bucket}/videos/")
                    + f"{bucket}/videos/gone.mp4,gone,train,,clips\n")
    with dask_processes(tmp_path / "dask", n_workers=2, env=s3.env) as (address, _procs):
        local = CliRunner().invoke(main, _extract_args(clips.local_manifest, local_url, address, config))
        assert local.exit_code == 0, local.output

        # the driver of the S3 job is killed once a video is complete, then the same command again
        driver = subprocess.Popen([sys.executable, "-m", "emokd",
                                   *_extract_args(urls, s3_url, address, config)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  env={**os.environ, **s3.env}, start_new_session=True)
        deadline = time.monotonic() + 60
        try:
            while not _complete_ids(s3_url):
                assert driver.poll() is None, driver.stdout.read().decode()
                assert time.monotonic() < deadline, "no video completed in 60 s"
                time.sleep(0.05)
        finally:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(timeout=30)
        after_kill = _complete_ids(s3_url)
        assert 1 <= len(after_kill) < len(clips.names), "the run finished before it could be killed"
        rerun = CliRunner().invoke(main, _extract_args(urls, s3_url, address, config))
        assert rerun.exit_code == 1, rerun.output  # the missing object
        assert "already complete" in rerun.output and "1 failed" in rerun.output
        etag_before = FeatureCache.open(s3_url).video_attrs("clips/clip0")["source"]["etag"]

        # a replaced object is extracted again, from its new content (clip2's bytes under clip0's name)
        fs.put_file(str(clips.videos["clip2"]), copies["clip0"][5:])
        changed = CliRunner().invoke(main, _extract_args(urls, s3_url, address, config))
        assert "1 extracted" in changed.output and "clip0.mp4 was replaced" in changed.output, changed.output
        replaced = FeatureCache.open(s3_url)
        assert replaced.video_attrs("clips/clip0")["source"]["etag"] != etag_before
        for name in ("face", "audio", "face_ok", "audio_ok", "pts"):
            np.testing.assert_array_equal(replaced.read_video("clips/clip0")[name],
                                          FeatureCache.open(str(local_url)).read_video("clips/clip2")[name])
        fs.put_file(str(clips.videos["clip0"]), copies["clip0"][5:])  # back as it was, for the comparison
        restored = CliRunner().invoke(main, _extract_args(urls, s3_url, address, config))
        assert "1 extracted" in restored.output, restored.output

    on_disk, on_s3 = FeatureCache.open(str(local_url)), FeatureCache.open(s3_url)
    assert on_s3.verify() == [] and list(on_s3.failures()) == ["clips/gone"]
    assert f"{bucket}/videos/gone.mp4: source video not found" in on_s3.failures()["clips/gone"]
    assert_same_cache(on_disk, on_s3)
    for name in clips.names:
        source = on_s3.video_attrs(f"clips/{name}")["source"]
        assert source["url"] == copies[name] and source["size"] == clips.videos[name].stat().st_size
        assert source["etag"]
    assert fs.ls(f"{bucket[5:]}/caches") == [f"{bucket[5:]}/caches/clips.zarr"]  # the lease is gone

    # training, evaluation, prediction and inspection read the S3 cache back (the endpoint given as
    # a flag here, the credentials from the AWS environment), with the same results as on disk
    remote = ["--storage-options", f"endpoint_url={s3.endpoint}"]
    for name, cache, extra in (("disk", str(local_url), []), ("s3", s3_url, remote)):
        trained = CliRunner().invoke(main, ["train-from-cache", "--cache", cache, "--run", str(tmp_path / name),
                                            "--epochs", "2", "--batch-size", "32", "--device", "cpu", *extra])
        assert trained.exit_code == 0, trained.output
        scored = CliRunner().invoke(main, ["evaluate", "--run", str(tmp_path / name), "--cache", cache,
                                           "--device", "cpu", *extra])
        assert scored.exit_code == 0, scored.output
        predicted = CliRunner().invoke(main, ["predict", "--run", str(tmp_path / name), "--cache", cache,
                                              "--test-list", str(clips.test_list), "--out",
                                              str(tmp_path / f"{name}.txt"), "--device", "cpu", *extra])
        assert predicted.exit_code == 0, predicted.output
    curves = [RunDir(tmp_path / name).read_metrics() for name in ("disk", "s3")]
    for rows in curves:  # the clock's columns differ, every value computed from the data must not
        for row in rows:
            del row["samples_per_s"], row["epoch_s"]
    assert len(curves[0]) == 2 and curves[0] == curves[1]
    evaluation = [json.loads((tmp_path / name / "eval_validation.json").read_text()) for name in ("disk", "s3")]
    assert {k: v for k, v in evaluation[0].items() if k not in ("cache", "run")} == {
        k: v for k, v in evaluation[1].items() if k not in ("cache", "run")}
    assert (tmp_path / "disk.txt").read_text() == (tmp_path / "s3.txt").read_text()
    on_disk, on_s3 = FeatureCache.open(str(local_url)), FeatureCache.open(s3_url)  # the teachers' soft labels
    (run_disk,), (run_s3,) = on_disk.soft_runs(complete_only=True), on_s3.soft_runs(complete_only=True)
    for video_id in on_disk.video_ids():
        soft_disk, soft_s3 = on_disk.read_soft(run_disk, video_id), on_s3.read_soft(run_s3, video_id)
        assert sorted(soft_disk) == sorted(soft_s3)
        for key in soft_disk:
            np.testing.assert_array_equal(soft_disk[key], soft_s3[key], err_msg=f"{video_id} {key}")
    picture = CliRunner().invoke(main, ["inspect", "clips/clip0", "--cache", s3_url, "--out",
                                        str(tmp_path / "clip0.png"), "--device", "cpu", *remote])
    assert picture.exit_code == 0, picture.output
    assert (tmp_path / "clip0.png").stat().st_size > 10_000

    # predict-video keeps its cache in the bucket, and a second call reuses it
    video_args = ["predict-video", str(clips.videos["clip3"]), "--run", str(tmp_path / "s3"), "--out",
                  str(tmp_path / "pv"), "--cache", f"{bucket}/caches/pv.zarr", "--device", "cpu",
                  "--face-source", "whole-frame", "--no-progress", *remote]
    for reused in (0, 1):
        applied = CliRunner().invoke(main, video_args)
        assert applied.exit_code == 0, applied.output
        assert f"{1 - reused} extracted, {reused} reused" in applied.output
    (table,) = (tmp_path / "pv").glob("*.csv")
    assert len(table.read_text().splitlines()) == clips.n_frames["clip3"] + 1
    assert len(FeatureCache.open(f"{bucket}/caches/pv.zarr").video_ids()) == 1
