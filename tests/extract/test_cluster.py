"""`emokd extract-features --scheduler` on an existing cluster: real scheduler and workers as processes."""

import os

import pytest

from extract_support import dask_processes


@pytest.mark.slow
def test_cluster_processes_run_tasks_and_stop(tmp_path):
    from distributed import Client

    with dask_processes(tmp_path / "dask", n_workers=2) as (address, procs):
        assert address.startswith("tcp://127.0.0.1:")
        with Client(address) as client:
            workers = client.scheduler_info()["workers"]
            assert len(workers) == 2
            pids = set(client.run(os.getpid).values())
            assert len(pids) == 2 and os.getpid() not in pids
    for proc in procs:
        assert proc.poll() is not None
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
