"""The S3 fixtures of the object-store tests: one moto server per test session, one bucket per test."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from emokd.testing.loopback import install as loopback_only
from emokd.testing.s3_server import s3_server

GUARD = Path(__file__).resolve().parent / "loopback_only"  # its sitecustomize guards subprocesses

_numbers = itertools.count()


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """moto's S3 server, a separate process on a free port of 127.0.0.1, for the whole session.
    From here on this process may connect to loopback only."""
    loopback_only()
    with s3_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def bucket(s3, monkeypatch, tmp_path) -> str:
    """A fresh bucket ("s3://name"); this process reaches the server through the AWS environment and
    works in tmp_path (a driver with a remote cache writes its log to the working directory); the
    processes a test starts inherit the loopback-only guard."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(GUARD), os.environ.get("PYTHONPATH")) if p))
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    return s3.make_bucket(f"emokd-test-{next(_numbers)}")


@pytest.fixture(scope="session")
def clips(s3, tmp_path_factory):
    """Four short labelled clips as a local manifest and as a manifest of their copies in a bucket."""
    from emokd.testing.url_dataset import write_url_dataset

    s3.make_bucket("emokd-videos")
    return write_url_dataset(tmp_path_factory.mktemp("clips"), s3.filesystem(), "s3://emokd-videos/clips")
