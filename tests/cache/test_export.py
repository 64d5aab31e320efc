"""`emokd cache ls` and `emokd cache export` (npz files, one Parquet table)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cache_support import ENCODERS, SETTINGS, video_values, write_packed, write_video
from emokd.cache import FeatureCache, fit_labels, encode_key
from emokd.cli import main


@pytest.fixture
def cache(tmp_path):
    cache = FeatureCache.create(tmp_path / "c.zarr", SETTINGS, {}, ENCODERS)
    stills = {f"affectnet/{i}": video_values(1, seed=i) for i in range(5)}
    labels = {i: fit_labels(i, 1, expr=[k], split="train" if k < 4 else "validation", dataset="affectnet")
              for k, i in enumerate(stills)}
    write_packed(cache, "affectnet~~0", stills, labels=labels)
    write_video(cache, "vid", video_values(30, seed=9), attrs={"fps": 30.0, "source": {"path": "/d/vid.mp4"},
                                                               "dataset": "affwild2"})
    cache.write_labels("vid", va=np.zeros((30, 2)), split="validation", dataset="affwild2")
    cache.begin_video("half", 3)
    return cache


def test_ls_lists_every_item_with_its_status(cache):
    result = CliRunner().invoke(main, ["cache", "ls", cache.url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "dataset", "frames", "status", "source"]
    assert len(lines) == 1 + 7
    assert any(line.split()[:4] == ["vid", "affwild2", "30", "complete"] and line.endswith("/d/vid.mp4") for line in lines)
    assert any(line.split()[0] == "half" and "writing" in line for line in lines)
    rows = [json.loads(x) for x in CliRunner().invoke(main, ["cache", "ls", cache.url, "--json", "--status",
                                                            "complete", "--dataset", "affectnet"]).output.splitlines()]
    assert [r["id"] for r in rows] == [f"affectnet/{i}" for i in range(5)]
    assert rows[0]["shard"] == "affectnet~~0" and rows[0]["sets"] == ["fer_pyemotion-fc1", "soundnet8-conv8"]


def test_export_npz_per_item(cache, tmp_path):
    out = tmp_path / "npz"
    result = CliRunner().invoke(main, ["cache", "export", cache.url, str(out), "--split", "validation"])
    assert result.exit_code == 0, result.output
    assert "exported 2 item(s), 31 frames" in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{encode_key('affectnet/4')}.npz", "vid.npz"])
    got = np.load(out / "vid.npz")
    want = video_values(30, seed=9)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    assert str(got["item_id"]) == "vid" and str(got["face_set"]) == "fer_pyemotion-fc1"
    assert (got["va"] == 0).all() and json.loads(str(got["splits"]))["VA"] == "validation"


def test_export_parquet_table(cache, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "items.parquet"
    result = CliRunner().invoke(main, ["cache", "export", cache.url, str(out), "--format", "parquet"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 35 and not list(tmp_path.glob(".items.parquet.tmp*"))
    rows = table.to_pydict()
    first = rows["item_id"].index("vid")
    np.testing.assert_array_equal(np.array(rows["face"][first:first + 30], np.float16), video_values(30, seed=9)["face"])
    assert rows["frame"][first:first + 3] == [0, 1, 2] and rows["split_va"][first] == "validation"
    still = rows["item_id"].index("affectnet/3")
    assert rows["expr"][still] == 3 and rows["au"][still] == [-1] * 12
    meta = json.loads(table.schema.metadata[b"emokd"])
    assert meta["face_set"] == "fer_pyemotion-fc1" and set(meta["fingerprints"]) == {"fer_pyemotion-fc1", "soundnet8-conv8"}
    missing = CliRunner().invoke(main, ["cache", "export", cache.url, str(out), "--item", "half"])
    assert missing.exit_code == 2 and "no complete item(s) ['half']" in missing.output
