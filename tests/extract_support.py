"""Helpers of the extraction tests: a real Dask cluster as separate processes, cache comparison."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from emokd.testing.processes import stop_session

DASK = str(Path(sys.executable).with_name("dask"))


@contextlib.contextmanager
def dask_processes(folder: Path, n_workers: int = 2, timeout: float = 60.0, env: dict | None = None):
    """`dask scheduler` and `dask worker` started as separate processes on loopback; yields the address.

    Each process runs in its own session, so stopping it (SIGTERM, then SIGKILL) also stops the
    worker process its nanny started. `env` adds environment variables (e.g. AWS_*) to every process.
    """
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **(env or {}))
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        out = open(folder / "scheduler.log", "wb")
        logs.append(out)
        procs.append(subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))
        deadline = time.monotonic() + timeout
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            if procs[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start: {(folder / 'scheduler.log').read_text()}")
            time.sleep(0.1)
        time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        for i in range(n_workers):
            out = open(folder / f"worker{i}.log", "wb")
            logs.append(out)
            procs.append(subprocess.Popen(
                [DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                 "--no-dashboard", "--name", f"test-worker-{i}", "--local-directory", str(folder)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(n_workers, timeout=timeout)
        yield address, procs
    finally:
        for proc in reversed(procs):
            stop_session(proc)
        for out in logs:
            out.close()


def assert_same_cache(a, b, video_ids=None) -> None:
    """Two caches hold the same complete items with equal arrays and labels, array for array (however
    their items are packed into shards)."""
    ids_a, ids_b = sorted(a.video_ids()), sorted(b.video_ids())
    assert ids_a == ids_b
    for video_id in video_ids or ids_a:
        va, vb = a.read_video(video_id), b.read_video(video_id)
        assert sorted(va) == sorted(vb), video_id
        for name in va:
            assert va[name].dtype == vb[name].dtype, (video_id, name)
            np.testing.assert_array_equal(va[name], vb[name], err_msg=f"{video_id}/{name}")
        la, lb = a.read_labels(video_id), b.read_labels(video_id)
        for name in ("va", "expr", "au"):
            np.testing.assert_array_equal(la[name], lb[name], err_msg=f"{video_id} labels {name}")
        assert la["split"] == lb["split"]


def dies_on_solo(task, cache_url, cfg, expected=None):
    """A shard task whose worker process dies (as if killed for memory) on a shard holding "solo"."""
    if "solo" in task.ids:
        os._exit(1)
    from emokd.extract.task import extract_shard

    return extract_shard(task, cache_url, cfg, expected)


def onnx_face_model(path):
    """A tiny face network exported to ONNX at `path` (3x32x32 in, 8-d penultimate, 4 logits)."""
    import torch
    from torch import nn

    torch.manual_seed(11)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 4)).eval()
    torch.onnx.export(net, (torch.rand(1, 3, 32, 32),), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "b"}}, dynamo=False)
    return net
