"""docs/scaling.md "A cluster, step by step" is a tested recipe: every command of its bash blocks
runs here as written, in bash, with loopback values for its variables (moto's S3 server and the
Dask scheduler on 127.0.0.1); the lines ending in `&` (scheduler, workers) run in the background."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emokd.testing.processes import stop_session
from emokd.testing.s3_server import free_port

pytestmark = pytest.mark.slow
DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"


def recipe_commands() -> list[str]:
    text = DOC.read_text()
    section = text[text.index("### A cluster, step by step"):]
    section = section[:section.index("\n### ", 1)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_the_recipe_has_the_commands_a_lab_runs():
    commands = recipe_commands()
    starts = [c.split()[0] if not c.startswith("DASK_") else c.split()[1] for c in commands]
    assert starts[:2] == ["dask", "dask"] and commands[0].endswith("&") and commands[1].endswith("&")
    assert {"extract-features", "verify", "info", "train-from-cache", "evaluate"} <= {
        word for c in commands for word in c.split()}


def _wait_for_workers(address: str, n: int, procs, timeout: float = 90.0) -> None:
    from distributed import Client

    for proc in procs:
        assert proc.poll() is None, f"a background command exited with {proc.returncode}"
    with Client(address, timeout=f"{timeout}s") as client:
        client.wait_for_workers(n, timeout=timeout)


def test_the_scaling_recipe_runs_against_loopback(s3, bucket, clips, tmp_path):
    port = free_port()
    env = {**os.environ, **s3.env, "SCHEDULER_HOST": "127.0.0.1", "SCHEDULER_PORT": str(port),
           "SCRATCH": str(tmp_path / "scratch"), "BUCKET": bucket, "S3_ENDPOINT": s3.endpoint,
           "MANIFEST": str(clips.url_manifest), "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # an activated env
    env.pop("AWS_ENDPOINT_URL")  # the recipe names the endpoint itself
    env.pop("EMOKD_STORAGE_OPTIONS", None)
    background: list[subprocess.Popen] = []
    outputs = []
    script = []  # the foreground lines run as one bash script, so that `export` carries over
    try:
        for command in recipe_commands():
            if command.endswith("&"):
                log = open(tmp_path / f"background{len(background)}.log", "wb")
                background.append(subprocess.Popen(["bash", "-c", command[:-1]], env=env, cwd=tmp_path,
                                                   stdout=log, stderr=subprocess.STDOUT,
                                                   start_new_session=True))
                if command.split()[1] == "worker" or " worker " in command:
                    _wait_for_workers(f"tcp://127.0.0.1:{port}", 2, background)
            else:
                script.append(f"echo '>>> {command}'\n{command}")
        done = subprocess.run(["bash", "-e", "-c", "\n".join(script)], env=env, cwd=tmp_path, timeout=400,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        outputs = done.stdout.decode(errors="replace")
        assert done.returncode == 0, outputs[-4000:]
    finally:
        for proc in reversed(background):
            stop_session(proc)
    runs = outputs.split(">>> ")
    first, second = runs[1], runs[2]
    assert "4 extracted" in first and "0 failed" in first
    assert "4 already complete" in second
    assert "ok: 4 complete item(s)" in outputs and "items        4 complete" in outputs
    assert (tmp_path / "runs" / "teacher" / "best.pt").is_file()
    assert (tmp_path / "runs" / "teacher" / "eval_validation.json").is_file()
    assert not list((tmp_path / "scratch").rglob("*.mp4"))  # downloads deleted after their task
