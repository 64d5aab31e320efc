"""A real S3 server for tests and benchmarks: moto's server, a separate process on 127.0.0.1.

`s3_server()` starts `moto_server` on a free loopback port, waits until it answers, yields an
`S3Server` (endpoint, the environment a client process needs, fsspec storage options) and stops it
(SIGTERM, then SIGKILL). Nothing but loopback is ever contacted; the credentials are moto's dummies.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from emokd.testing.processes import stop_session

HOST = "127.0.0.1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class S3Server:
    endpoint: str       # http://127.0.0.1:PORT
    log: Path

    @property
    def env(self) -> dict[str, str]:
        """Environment variables for a process that reaches the server through the standard AWS chain."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    @property
    def storage_options(self) -> dict:
        """The same, as fsspec/s3fs options (what `--storage-options` would give)."""
        return {"endpoint_url": self.endpoint, "key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "secret": CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(**self.storage_options, use_listings_cache=False, skip_instance_cache=True)

    def make_bucket(self, name: str) -> str:
        """Create bucket `name` (if needed); returns "s3://name"."""
        fs = self.filesystem()
        if not fs.exists(name):
            fs.mkdir(name)
        return f"s3://{name}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _moto_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script), "-H", HOST, "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]


def _answers(endpoint: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    try:
        with opener.open(f"{endpoint}/moto-api/", timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def s3_server(folder: str | Path, timeout: float = 60.0):
    """moto's S3 server as a separate process on a free loopback port; its log in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "moto_server.log"
    for _attempt in range(3):  # the free port may be taken between the probe and the bind
        port = free_port()
        endpoint = f"http://{HOST}:{port}"
        out = open(log, "ab")
        proc = subprocess.Popen(_moto_command(port), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, **CREDENTIALS})
        deadline = time.monotonic() + timeout
        while proc.poll() is None and not _answers(endpoint) and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None and _answers(endpoint):
            break
        stop_session(proc)
        out.close()
    else:
        raise RuntimeError(f"moto_server did not start on {HOST}: {log.read_text()[-2000:]}")
    try:
        yield S3Server(endpoint, log)
    finally:
        stop_session(proc)
        out.close()

