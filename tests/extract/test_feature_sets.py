"""`extract-features` with another encoder on an existing cache computes only the new feature set;
a changed setting of an existing set is refused, naming it; training picks sets by name."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from emokd.cli import main
from extract_support import onnx_face_model
from safety_support import snapshot   # relative path -> sha256 of every file

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow


def test_another_face_encoder_adds_only_its_set(tmp_path):
    from emokd.cache import FeatureCache
    from emokd.testing.affwild2_tree import TreeVideo, write_affwild2_tree

    tree = write_affwild2_tree(tmp_path / "data", [TreeVideo("solo", 20, 30, crop_gaps=(4,), size=(96, 96)),
                                                   TreeVideo("other", 12, 25, size=(96, 96))])
    url = tmp_path / "cache.zarr"
    base = ["extract-features", str(tree.root), "--cache", str(url), "--workers", "1", "--no-progress",
            "--face-source", "crops"]
    first = CliRunner().invoke(main, base)
    assert first.exit_code == 0, first.output
    before = snapshot(url)
    onnx_face_model(tmp_path / "face.onnx")
    onnx = ["--face-encoder", "onnx", "--face-weights", str(tmp_path / "face.onnx"), "--face-layer", "penultimate",
            "--face-input", "size=32"]
    second = CliRunner().invoke(main, base + onnx)
    assert second.exit_code == 0, second.output
    after = snapshot(url)
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert changed == ["zarr.json"]          # only the set registry: no existing array, label or table changed
    cache = FeatureCache.open(url)
    names = [fs.name for fs in cache.feature_sets]
    assert names[:2] == ["fer_pyemotion-embedding", "soundnet8-conv8"] and len(names) == 3
    new = names[2]
    assert all("/" + new in k for k in set(after) - set(before))
    assert cache.item_ids(sets=names) == ["other", "solo"] and cache.verify() == []
    solo = cache.read_item("solo", face=new)
    assert solo["face"].shape == (20, 8) and not solo["face_ok"][4] and solo["face_ok"].sum() == 19
    np.testing.assert_array_equal(solo["audio"], cache.read_item("solo")["audio"])
    again = CliRunner().invoke(main, base + onnx)        # nothing left to compute
    assert again.exit_code == 0 and "2 already complete" in again.output, again.output
    refused = CliRunner().invoke(main, base + ["--crop-size", "96"])
    assert refused.exit_code == 2
    assert "fer_pyemotion-embedding: settings.crop_size: cache has 112, requested 96" in refused.output

    from emokd.train.config import TrainConfig
    from emokd.train.loop import train
    from emokd.train.runs import RunDir, load_trained

    small = {"lstm_hidden": 8, "extractor": [16], "heads": [8], "discriminator": [4]}
    train(TrainConfig(cache=str(url), run=str(tmp_path / "run"), epochs=1, batch_size=8, window=2, stride=1,
                      device="cpu", recipe_options=small, export_soft=False, face_features=new,
                      train_split="train", val_split="train"))
    assert RunDir(tmp_path / "run").config().face_features == new   # the run records the sets it used
    _, model, ckpt = load_trained(tmp_path / "run")
    assert ckpt["feature_sets"]["face"] == new and model.config.face_dim == 8
    assert ckpt["feature_sets"]["fingerprints"][new] == cache.feature_set(new).fingerprint
    log = json.dumps(ckpt["extraction"]["encoders"])
    assert "onnx" in log
    from emokd.train.evaluate import evaluate_run

    scored = evaluate_run(tmp_path / "run", str(url), split="train", device="cpu")  # the default set is 512-d:
    assert scored["tasks"]["EXPR"]["n_frames"] > 0     # only the run's own 8-d set fits its model
