"""The cache on a real S3 server (moto on loopback): what other processes wrote is seen, failures of
the store are one-line errors, options parse and never leave their secrets in saved configs."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cache_support import ENCODERS, SETTINGS, video_values, write_video
from emokd.cache import FeatureCache
from emokd.cache.location import parse_storage_options
from emokd import config
from emokd.config import made_by, to_dict, without_secrets
from emokd.errors import CacheError, ConfigError
from emokd.testing.s3_server import free_port


def test_storage_options_parse_to_typed_nested_values():
    assert parse_storage_options(["endpoint_url=http://127.0.0.1:9000", "anon=false", "max_concurrency=4",
                                  "client_kwargs.region_name=eu-west-1", "config_kwargs.s3.addressing_style=path",
                                  "requester_pays=true", "key=AKIA=="]) == {
        "endpoint_url": "http://127.0.0.1:9000", "anon": False, "max_concurrency": 4,
        "client_kwargs": {"region_name": "eu-west-1"}, "config_kwargs": {"s3": {"addressing_style": "path"}},
        "requester_pays": True, "key": "AKIA=="}
    assert parse_storage_options("anon=true,default_block_size=1048576") == {"anon": True,
                                                                            "default_block_size": 1048576}
    for bad in (["endpoint_url"], ["=3"], ["a=1", "a.b=2"]):
        with pytest.raises(ConfigError, match="storage option"):
            parse_storage_options(bad)


def test_saved_configs_and_command_lines_keep_no_credentials(monkeypatch):
    from emokd.extract.config import ExtractConfig

    options = {"endpoint_url": "http://127.0.0.1:9000", "key": "AKIA", "secret": "s3cr3t",
               "client_kwargs": {"region_name": "x", "aws_session_token": "tok"}}
    cfg = ExtractConfig(storage_options=options)
    saved = to_dict(cfg)["storage_options"]
    assert saved == {"endpoint_url": "http://127.0.0.1:9000", "client_kwargs": {"region_name": "x"}}
    assert without_secrets(options) == saved and cfg.storage_options["secret"] == "s3cr3t"
    monkeypatch.setattr(config, "_COMMAND_LINE", None)
    config.set_command_line(["cache", "info", "s3://b/c.zarr", "--storage-options", "secret=s3cr3t",
                             "--storage-options=client_kwargs.aws_session_token=t0k3n", "--storage-options",
                             "anon=false"])
    command = made_by()["command"]
    assert "s3cr3t" not in command and "t0k3n" not in command
    assert "secret=***" in command and "aws_session_token=***" in command and "anon=false" in command


@pytest.mark.slow
def test_a_reader_sees_what_another_process_wrote(s3, bucket):
    """Workers add videos while the driver holds the cache open: its listings must not be cached."""
    url = f"{bucket}/c.zarr"
    cache = FeatureCache.create(url, SETTINGS, {}, ENCODERS)
    write_video(cache, "a/1", video_values(30, 1))
    assert cache.video_ids() == ["a/1"]  # listed once, so a listing cache would now hold it
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(os.path.dirname(__file__))!r})
        from cache_support import video_values, write_video
        from emokd.cache import FeatureCache
        cache = FeatureCache.open({url!r}, mode="r+")
        write_video(cache, "a/2", video_values(40, 2))
        cache.record_failure("a/3", "unreadable")
    """)
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, **s3.env}, timeout=120)
    assert cache.video_ids() == ["a/1", "a/2"] and list(cache.failures()) == ["a/3"]
    np.testing.assert_array_equal(cache.read_video("a/2")["face"], video_values(40, 2)["face"])
    assert cache.verify() == [] and cache.info()["items"] == 2


def test_incomplete_videos_and_stale_groups_on_s3(s3, bucket):
    """The complete mark is the last write: a half-written video is not read, and is replaced."""
    url = f"{bucket}/c.zarr"
    cache = FeatureCache.create(url, SETTINGS, {}, ENCODERS)
    write_video(cache, "a/1", video_values(300, 1), commit=False)
    assert FeatureCache.open(url).video_ids() == [] and cache.video_statuses() == {"a/1": "writing"}
    with pytest.raises(CacheError, match="incomplete"):
        FeatureCache.open(url).read_video("a/1")
    values = video_values(200, 3)  # fewer frames: the stale group's extra chunks must be gone
    write_video(cache, "a/1", values)
    reader = FeatureCache.open(url)
    assert reader.video_ids() == ["a/1"] and reader.verify() == []
    np.testing.assert_array_equal(reader.read_video("a/1")["audio"], values["audio"])
    assert reader.n_frames("a/1") == 200 and reader.read_video("a/1")["face"].shape == (200, 8)


@pytest.mark.slow
def test_store_failures_are_one_line_errors(s3, bucket):
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CacheError, match="cannot reach the object store.*endpoint_url"):
        FeatureCache.open(f"{bucket}/c.zarr", storage_options={"endpoint_url": closed})
    with pytest.raises(CacheError, match="no such bucket"):
        FeatureCache.create("s3://no-such-bucket/c.zarr", SETTINGS, {}, ENCODERS,
                            storage_options=s3.storage_options)
    with pytest.raises(CacheError, match="no feature cache there"):
        FeatureCache.open(f"{bucket}/nothing.zarr")


def test_only_loopback_is_reachable_here_and_in_the_processes_tests_start(s3, bucket):
    import socket

    with pytest.raises(ConnectionRefusedError, match="loopback only"):
        socket.create_connection(("192.0.2.1", 80), timeout=5)  # TEST-NET-1: never routed anyway
    code = ("import socket\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=5)\n"
            "except ConnectionRefusedError as exc:\n    print(exc)\n")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "loopback only" in child.stdout, child.stdout + child.stderr
    socket.create_connection(("127.0.0.1", int(s3.endpoint.rsplit(":", 1)[1])), timeout=5).close()


@pytest.mark.slow
def test_cache_commands_on_s3_with_storage_options(s3, bucket, clips, monkeypatch):
    """info, verify and relabel through the CLI, the endpoint given only by --storage-options."""
    from click.testing import CliRunner

    from emokd.cli import main
    from emokd.index.dataset import index_dataset

    url = f"{bucket}/c.zarr"
    cache = FeatureCache.create(url, SETTINGS, {}, ENCODERS)
    for name, n in clips.n_frames.items():
        write_video(cache, f"clips/{name}", video_values(n, len(name)))
    import s3fs

    monkeypatch.delenv("AWS_ENDPOINT_URL")  # only the flag says where the server is,
    s3fs.S3FileSystem.clear_instance_cache()  # also to the writer lock (no client made earlier helps)
    flag = ["--storage-options", f"endpoint_url={s3.endpoint}"]
    relabelled = CliRunner().invoke(main, ["cache", "relabel", str(clips.local_manifest), url, *flag])
    assert relabelled.exit_code == 0, relabelled.output
    assert f"relabelled {len(clips.names)} item(s)" in relabelled.output
    verified = CliRunner().invoke(main, ["cache", "verify", url, *flag])
    assert verified.exit_code == 0 and f"ok: {len(clips.names)} complete item(s)" in verified.output
    info = CliRunner().invoke(main, ["cache", "info", url, "--json", *flag])
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["items"] == len(clips.names)
    reader = FeatureCache.open(url, storage_options={"endpoint_url": s3.endpoint})
    for item in index_dataset(clips.local_manifest).items:
        labels = reader.read_labels(item.video_id)
        np.testing.assert_array_equal(labels["expr"], item.labels.expr)
        np.testing.assert_array_equal(labels["va"], item.labels.va)
    closed = ["--storage-options", f"endpoint_url=http://127.0.0.1:{free_port()}"]
    unreachable = CliRunner().invoke(main, ["cache", "info", url, *closed])
    assert unreachable.exit_code == 2 and "cannot reach the object store" in unreachable.output
    assert len(unreachable.output.strip().splitlines()) == 1  # one line, no traceback
