"""`--overwrite` removes only an emokd cache, only after the new settings are known to work, and a
kill at any moment of it leaves the old cache or a valid new one."""

import shutil
import subprocess

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from emokd.cache import FeatureCache
from emokd.cli import main
from extract_support import assert_same_cache
from safety_support import assert_consistent, emokd_command, emokd_env, kill_when, snapshot

pytestmark = pytest.mark.slow


def extract(data, cache, *extra):
    return CliRunner().invoke(main, ["extract-features", str(data), "--cache", str(cache), "--no-progress",
                                     *map(str, extra)])


def assert_one_line_error(result, *words):
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in errors[0], result.output
    return errors[0]


def test_overwrite_never_deletes_what_emokd_did_not_make(safety_tree, reference_copy, tmp_path):
    """Problem: `--cache DATA --overwrite` deleted the dataset, as the refusal's own advice suggested."""
    import zarr

    data = safety_tree.root
    before = snapshot(data)
    for extra in ([], ["--overwrite"]):
        error = assert_one_line_error(extract(data, data, *extra), str(data), "not an emokd cache")
        assert "--overwrite" not in error
    assert snapshot(data) == before

    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    assert_one_line_error(extract(data, notes, "--overwrite"), str(notes), "a file, not a cache folder")
    assert notes.read_text() == "mine\n"

    foreign = tmp_path / "other.zarr"
    zarr.open_group(str(foreign), mode="w").create_array("x", shape=(3,), dtype="int8")
    kept = snapshot(foreign)
    error = assert_one_line_error(extract(data, foreign, "--overwrite"), "not an emokd feature cache")
    assert "--overwrite" not in error and snapshot(foreign) == kept

    (reference_copy / "my_results.csv").write_text("a,b\n")  # a user's file inside an emokd cache
    kept = snapshot(reference_copy)
    assert_one_line_error(extract(data, reference_copy, "--overwrite", "--window-s", "9.9"),
                          "emokd did not make (my_results.csv)")
    assert snapshot(reference_copy) == kept


def test_settings_no_video_can_use_are_refused_before_anything_is_written(safety_tree, safety_reference,
                                                                          reference_copy, tmp_path):
    """Problem: `--window-s 5 --overwrite` wiped a complete cache, then every video failed."""
    data = safety_tree.root
    before = snapshot(reference_copy)
    text_weights = tmp_path / "face.pt"
    text_weights.write_text("hello\n")  # 6 bytes: raised KeyError: 101 deep in a loader
    cases = [(["--window-s", "5"], "window_s 5", "too short for layer conv8"),
             (["--face-weights", text_weights], str(text_weights), "cannot load it as face weights")]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "device: 'cuda'", "CUDA is not available"))  # the workers' device
    for args, *words in cases:
        assert_one_line_error(extract(data, reference_copy, "--overwrite", *args), *words)
        assert snapshot(reference_copy) == before, args  # not one byte changed
        fresh = tmp_path / "fresh.zarr"
        assert_one_line_error(extract(data, fresh, *args), *words)
        assert not fresh.exists(), args  # refused once, before a cache is created
    assert_same_cache(safety_reference[1], FeatureCache.open(str(reference_copy)))


@pytest.fixture(scope="module")
def reference_99(safety_tree, tmp_path_factory):
    """The uninterrupted cache of the same tree with --window-s 9.9 (what --overwrite must end as)."""
    url = tmp_path_factory.mktemp("ref99") / "cache.zarr"
    assert extract(safety_tree.root, url, "--window-s", "9.9").exit_code == 0
    return FeatureCache.open(str(url))


def _old_video_groups(url):
    """Video groups of the old store, wherever --overwrite has put it (the path or a sibling)."""
    count = 0
    for store in [url, *url.parent.glob(url.name + ".emokd-*")]:
        try:
            count += sum(1 for entry in (store / "shards").iterdir() if entry.name.startswith("pad"))
        except FileNotFoundError:
            pass
    return count


def test_a_kill_during_overwrite_leaves_the_old_cache_or_a_valid_new_one(safety_tree, safety_reference,
                                                                         reference_99, tmp_path):
    """Problem: a kill during --overwrite's delete left groups marked complete without their arrays,
    skipped forever by reruns. Killed while the old store is being deleted (and, in a second try, as
    soon as the new store is staged), the path still opens as a sound cache, old or new; the same
    command then ends equal to an uninterrupted run with the new settings."""
    url = tmp_path / "cache.zarr"
    shutil.copytree(safety_reference[0], url)
    pads = 300  # copies of one video group: an old store big enough for its deletion to take a while
    for i in range(pads):
        shutil.copytree(url / "shards" / "alpha", url / "shards" / f"pad{i:03d}")
    old = snapshot(url)
    command = emokd_command("extract-features", safety_tree.root, "--cache", url, "--no-progress",
                            "--workers", "1", "--window-s", "9.9", "--overwrite")
    moments = {"while the old store is deleted": lambda: 0 < _old_video_groups(url) < pads,
               "once the new store is staged": lambda: any(url.parent.glob(url.name + ".emokd-new-*"))}
    for moment, ready in moments.items():
        proc = subprocess.Popen(command, env=emokd_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        assert kill_when(proc, ready), f"the command ended before it could be killed {moment}"
        found = FeatureCache.open(str(url))  # opens: it is a cache, the old one or the new one
        if found.fingerprint == safety_reference[1].fingerprint:
            assert snapshot(url) == old, moment
        else:
            assert assert_consistent(url, reference_99), moment
            shutil.rmtree(url)
            shutil.copytree(safety_reference[0], url)  # the old cache again, for the next moment
            for i in range(pads):
                shutil.copytree(url / "shards" / "alpha", url / "shards" / f"pad{i:03d}")
    result = CliRunner().invoke(main, command[3:])
    assert result.exit_code == 0, result.output
    assert_same_cache(reference_99, FeatureCache.open(str(url)))
    assert FeatureCache.open(str(url)).verify() == []
    assert sorted(p.name for p in url.parent.iterdir()) == ["cache.zarr", "cache.zarr.emokd"]  # logs beside; no lock
    new, ref = FeatureCache.open(str(url)).read_video("alpha"), safety_reference[1].read_video("alpha")
    np.testing.assert_array_equal(new["face"], ref["face"])  # the window changes only the audio
    assert not np.array_equal(new["audio"], ref["audio"])


def test_a_complete_video_that_lost_arrays_is_redone(safety_tree, safety_reference, reference_copy):
    """Problem: a store whose complete groups had lost arrays was skipped forever ("already
    complete") while `verify` reported the loss. The rerun's cheap check finds the damage, says so,
    and redoes those videos only."""
    shutil.rmtree(reference_copy / "shards" / "bravo" / "fer_pyemotion-embedding")   # an array gone
    shutil.rmtree(reference_copy / "shards" / "delta" / "soundnet8-conv8" / "c")     # its chunk files gone
    assert len(FeatureCache.open(str(reference_copy)).verify()) == 2
    result = extract(safety_tree.root, reference_copy)
    assert result.exit_code == 0, result.output
    assert "2 extracted, 2 already complete" in result.output and "redid 2 items of defective shards" in result.output
    log = sorted(reference_copy.parent.glob("cache.zarr.emokd/extract-*.log"))[-1].read_text()
    assert "shard bravo: complete but defective (shard 'bravo': array 'fer_pyemotion-embedding' is missing)" in log
    assert "shard delta: complete but defective (shard 'delta': array 'soundnet8-conv8' lost 1 of its 1 chunk files)" in log
    assert_same_cache(safety_reference[1], FeatureCache.open(str(reference_copy)))
    assert FeatureCache.open(str(reference_copy)).verify() == []
