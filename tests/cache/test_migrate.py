"""`emokd cache migrate`: a version 1 cache (one group per video) read back equal as version 2."""

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from emokd.cache import FeatureCache
from emokd.cache import migrate as migration
from emokd.cli import main
from emokd.errors import CacheError
from cache_v1_support import MADE_BY, STILL_SPLITS, V1_FILES, VIDEOS, write_v1_cache
from safety_support import snapshot   # relative path -> sha256 of every file


def assert_migrated(cache: FeatureCache, written: dict) -> None:
    assert cache.schema_version == 2 and cache.item_ids() == sorted(written)
    assert [fs.name for fs in cache.feature_sets] == ["fer_pyemotion-embedding", "soundnet8-conv8"]
    face, audio = cache.feature_sets
    assert face.encoder["name"] == "fer_pyemotion" and face.settings == {
        "face_source": "crops", "face_detector": {"name": "mtcnn", "weights_sha256": "c" * 64}, "crop_size": 112,
        "crop_numbering": "1-based"}
    assert audio.settings == {"sample_rate": 22050, "window_s": 10, "audio_mode": "shared-trunk", "audio_track": None}
    assert face.config["face_encoder"] == "fer_pyemotion"
    for vid, truth in written.items():
        got = cache.read_item(vid)
        for name, array in truth["values"].items():
            assert got[name].dtype == array.dtype
            np.testing.assert_array_equal(got[name], array, err_msg=f"{vid} {name}")
        labels = cache.read_labels(vid)
        va, expr, au, split = truth["labels"]
        np.testing.assert_array_equal(labels["va"], va)
        np.testing.assert_array_equal(labels["expr"], expr)
        np.testing.assert_array_equal(labels["au"], au)
        attrs = cache.item_attrs(vid)
        assert attrs["fps"] == 30.0 and attrs["source"]["path"] == f"/data/{vid}.mp4"
        assert attrs["dataset"] == VIDEOS[vid][1] and attrs["face_source"] == "crops"
    # soft labels: carried for the long video (alone in its shard); the stills' shard had them for one
    # still only, so it has none (a student computes them) rather than rows of NaN
    soft = cache.read_soft("teacher", "118-30-640x480")
    assert sorted(soft) == ["au", "expr", "va"]
    for name, values in written["118-30-640x480"]["soft"].items():
        np.testing.assert_array_equal(soft[name], values)
    assert not cache.has_soft("teacher", "affectnet/003")
    # one split per video in version 1: it goes to every task with labels (the limitation)
    assert cache.read_labels("10-60-1280x720_left")["splits"] == {
        "VA": "unlabelled", "EXPR": "validation", "AU": "unlabelled", "MTL": "unlabelled"}
    assert cache.read_labels("affectnet/004")["splits"] == STILL_SPLITS      # per-task splits kept as they were
    assert cache.made_by[:1] == MADE_BY
    assert cache.soft_runs(complete_only=True) == ["teacher"]
    assert cache.soft_run_attrs("teacher")["teacher_run"] == "/runs/teacher"
    assert cache.soft_video_attrs("teacher", "118-30-640x480")["checkpoint_sha256"] == "d" * 64
    assert cache.failures() == {"broken": "broken.mp4: no frames"}
    keys = cache.shard_keys()      # the long video alone; the short one and the stills packed per dataset
    assert len(keys) == 3 and "118-30-640x480" in keys and sum("~~" in k for k in keys) == 2
    assert cache.verify() == []


def test_a_version_1_cache_migrated_to_a_new_path_reads_back_equal(tmp_path):
    old = tmp_path / "old.zarr"
    written = write_v1_cache(old)
    with pytest.raises(CacheError, match=r"schema version 1.*emokd cache migrate .*old\.zarr NEW_PATH"):
        FeatureCache.open(old)
    before = snapshot(old)
    report = migration.migrate(str(old), str(tmp_path / "new.zarr"))
    assert snapshot(old) == before                    # the old cache is only read
    assert report.items == 22 and report.skipped == ["half"]
    assert report.renamed == ["fer_default->fer_pyemotion"] and report.single_split == 2
    beside = tmp_path / "new.zarr.emokd"           # version 1's log and config: copied beside the new store
    assert {p.name: p.read_text() for p in beside.iterdir()} == {
        "extract-version1.log": V1_FILES["extract.log"], "extract-version1.yaml": V1_FILES["extract_config.yaml"]}
    assert_migrated(FeatureCache.open(tmp_path / "new.zarr"), written)
    text = "\n".join(report.lines(str(tmp_path / "new.zarr")))
    assert "limitation (2 item(s)): version 1 stored one split per video" in text and "emokd cache relabel DATASET" in text
    with pytest.raises(CacheError, match="already a cache"):
        migration.migrate(str(old), str(tmp_path / "new.zarr"))


def test_in_place_and_killed_migrations(tmp_path, monkeypatch):
    old = tmp_path / "c.zarr"
    written = write_v1_cache(old)
    real = migration._write_shard
    calls = []

    def dies_after_one(*args):
        if calls:
            raise KeyboardInterrupt("killed")
        calls.append(args[2])
        real(*args)

    monkeypatch.setattr(migration, "_write_shard", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        migration.migrate(str(old))
    with pytest.raises(CacheError, match="a migration from schema version 1 was interrupted; run `emokd cache migrate`"):
        FeatureCache.open(old)
    monkeypatch.setattr(migration, "_write_shard", real)
    report = migration.migrate(str(old))             # resumed: the first shard is kept
    assert report.kept_shards == 1 and report.shards == 3
    cache = FeatureCache.open(old)
    assert_migrated(cache, written)
    assert sorted(dict(cache.root.members())) == ["failures", "shards", "soft"]   # version 1 groups gone
    assert "settings" not in cache.root.attrs and cache.root.attrs["migration"]["status"] == "complete"
    assert sorted(p.name for p in old.iterdir()) == ["failures", "shards", "soft", "zarr.json"]   # log, config moved
    assert (tmp_path / "c.zarr.emokd" / "extract-version1.log").read_text() == V1_FILES["extract.log"]
    code = f"import zarr; zarr.open_group({str(old)!r}, mode='r').tree()"
    assert subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True).returncode == 0
    with pytest.raises(CacheError, match="already schema version 2"):
        migration.migrate(str(old))


def test_a_migration_killed_after_its_commit_is_finished_by_a_rerun(tmp_path, monkeypatch):
    old = tmp_path / "c.zarr"
    write_v1_cache(old)
    real = migration.remove_node

    def dies_at_the_labels(parent, name):
        if name == "labels":
            raise KeyboardInterrupt("killed")
        real(parent, name)

    monkeypatch.setattr(migration, "remove_node", dies_at_the_labels)
    with pytest.raises(KeyboardInterrupt):
        migration.migrate(str(old))
    monkeypatch.setattr(migration, "remove_node", real)
    root = FeatureCache.open(old).root     # committed: version 2 already, with version 1's leftovers
    assert root.attrs["migration"]["status"] == "complete" and "settings" not in root.attrs
    assert "videos" not in root and "labels" in root and (old / "extract.log").is_file()
    assert any(list(run.groups()) for _, run in root["soft"].groups())     # per-video soft labels
    result = CliRunner().invoke(main, ["cache", "migrate", str(old)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [(f"{old}: finished the clean-up of an interrupted migration (version "
                                           "1's groups and files removed; it was schema version 2 already)")]
    root = FeatureCache.open(old).root
    assert sorted(p.name for p in old.iterdir()) == ["failures", "shards", "soft", "zarr.json"]
    assert [list(run.groups()) for _, run in root["soft"].groups()] == [[]]
    assert (tmp_path / "c.zarr.emokd" / "extract-version1.log").read_text() == V1_FILES["extract.log"]
    again = CliRunner().invoke(main, ["cache", "migrate", str(old)])   # nothing left to clean
    assert again.exit_code == 2 and "already schema version 2; nothing to migrate" in again.output


def test_migrate_command_then_train_and_evaluate(tmp_path):
    from emokd.train.config import TrainConfig
    from emokd.train.evaluate import evaluate_run
    from emokd.train.loop import train

    write_v1_cache(tmp_path / "old.zarr")
    result = CliRunner().invoke(main, ["cache", "migrate", str(tmp_path / "old.zarr"), str(tmp_path / "new.zarr")])
    assert result.exit_code == 0, result.output
    assert "migrated 22 item(s) into 3 shard(s)" in result.output
    assert "renamed the encoder fer_default -> fer_pyemotion" in result.output
    assert "limitation (2 item(s)): version 1 stored one split per video" in result.output
    cache = FeatureCache.open(tmp_path / "new.zarr")
    assert [r.get("migrated_from") for r in cache.made_by] == [None, str(tmp_path / "old.zarr")]
    small = {"lstm_hidden": 8, "extractor": [16], "heads": [8], "discriminator": [4]}
    train(TrainConfig(cache=str(tmp_path / "new.zarr"), run=str(tmp_path / "run"), epochs=1, batch_size=8, window=2,
                      stride=1, device="cpu", recipe_options=small, export_soft=False))
    scored = evaluate_run(tmp_path / "run", str(tmp_path / "new.zarr"), split="validation", device="cpu")
    assert scored["tasks"]["EXPR"]["n_frames"] == 90     # the 90-frame validation video (stills: EXPR train)
    assert scored["tasks"]["VA"]["n_frames"] == 20          # the stills, VA validation by their per-task split
    again = CliRunner().invoke(main, ["cache", "migrate", str(tmp_path / "new.zarr")])
    assert again.exit_code == 2 and "already schema version 2; nothing to migrate" in again.output
