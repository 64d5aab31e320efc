"""Per-task splits from a generated ABAW tree to `eval_validation.json`.

`mixed` is in VA Train_Set and EXPR Validation_Set: its VA frames are trained on (and never
validated), its EXPR frames are validated on (and never reach a training loss), and the report
counts exactly the labelled frames of each task's validation files. `mtl_val` is only in the MTL
validation set: P_MTL is scored there, and the report says so. The cache is written from the real
index through the labels writer extraction uses; its features are random (no encoder needed).
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import f1_score

from emokd.cache import FeatureCache
from emokd.cache.relabel import write_item_labels
from emokd.cli import main
from emokd.index.dataset import index_dataset
from emokd.testing.affwild2_tree import TreeVideo, write_affwild2_tree
from emokd.train.config import TrainConfig
from emokd.train.data import load_frame_data
from emokd.train.evaluate import predict_videos
from emokd.train.loop import train
from emokd.train.recipes.jeong2022.recipe import Jeong2022
from emokd.train.runs import load_trained

pytestmark = pytest.mark.slow      # trains a few small runs
ENCODERS = [{"name": "random_face", "kind": "face", "output_dim": 6, "layer": "none", "input_spec": {},
             "weights_sha256": "synthetic"},
            {"name": "random_audio", "kind": "audio", "output_dim": 3, "layer": "none", "input_spec": {},
             "weights_sha256": "synthetic"}]
VIDEOS = [
    TreeVideo("mixed", 36, splits={"VA": "train", "EXPR": "validation"}),
    TreeVideo("trainer", 40, splits={"VA": "train", "EXPR": "train", "AU": "train"}),
    TreeVideo("checker", 30, splits={"VA": "validation", "AU": "validation"}, label_lines=33),
    TreeVideo("mtl_val", 30, splits={}, mtl="validation"),
]
SMALL = {"lstm_hidden": 8, "extractor": [16], "heads": [8], "discriminator": [8]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("splits")
    tree = write_affwild2_tree(root / "abaw", VIDEOS)
    manifest = index_dataset(tree.root)
    cache = FeatureCache.create(root / "cache.zarr", {"synthetic": True}, {}, ENCODERS)
    rng = np.random.default_rng(0)
    for item in manifest.items:
        n = item.n_frames
        writer = cache.begin_video(item.video_id, n, {"fps": 30.0})
        writer.write("face", 0, rng.standard_normal((n, 6)).astype(np.float16))
        writer.write("audio", 0, rng.standard_normal((n, 3)).astype(np.float16))
        writer.write("face_ok", 0, np.ones(n, bool))
        writer.write("audio_ok", 0, np.ones(n, bool))
        writer.write("pts", 0, np.arange(n) / 30.0)
        writer.commit()
        write_item_labels(cache, item)

    seen: dict[str, list] = {}                    # stream -> frame ids whose own-task label fed a loss
    real_loss = Jeong2022.loss

    def spy(self, outputs, batch, state):
        task = batch["stream"]
        mask = batch["va_mask"] & batch["expr_mask"] & batch["au_mask"] if task == "MTL" else \
            batch[f"{task.lower()}_mask"]
        seen.setdefault(task, []).extend(batch["index"][mask].tolist())
        for key in ("va_mask", "expr_mask", "au_mask"):
            seen.setdefault(key, []).extend(batch["index"][batch[key]].tolist())
        return real_loss(self, outputs, batch, state)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Jeong2022, "loss", spy)
        train(TrainConfig(cache=str(root / "cache.zarr"), run=str(root / "run"), epochs=1, batch_size=16,
                          window=2, stride=1, device="cpu", recipe_options=SMALL, export_soft=False))
    result = CliRunner().invoke(main, ["evaluate", "--run", str(root / "run"), "--cache", str(root / "cache.zarr"),
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads((root / "run" / "eval_validation.json").read_text())
    data = load_frame_data(FeatureCache.open(root / "cache.zarr"), ["train", "validation"], 2, 1)
    return {"tree": tree, "root": root, "data": data, "seen": seen, "report": report, "output": result.output}


def frames_of(data, vid):
    v = data.video_ids.index(vid)
    return set(range(int(data.video_start[v]), int(data.video_start[v] + data.video_len[v])))


def labelled_lines(tree, task, split, n_frames):
    """Frames labelled by the `split` files of `task`, counted from what the tree wrote."""
    key = task.lower()
    count, videos = 0, 0
    for name, written in tree.written.items():
        if written.get(task) != split:
            continue
        values = tree.truth[name][key][:n_frames[name]]
        present = ~np.isnan(values).any(1) if task == "VA" else (values >= 0).all(1) if task == "AU" else values >= 0
        count, videos = count + int(present.sum()), videos + 1
    return count, videos


def test_the_mixed_video_trains_va_and_validates_expr(world):
    data, seen = world["data"], world["seen"]
    mixed = frames_of(data, "mixed")
    va_labelled = {i for i in mixed if not np.isnan(data.va[i]).any()}
    assert va_labelled and va_labelled <= set(seen["VA"])                  # every VA frame trained on
    assert not mixed & set(seen["expr_mask"])                              # no EXPR label of it in any loss
    assert not mixed & set(seen["EXPR"])
    expr_labelled = {i for i in mixed if data.expr[i] >= 0}
    assert expr_labelled                                                   # it has them: validation's
    checker = frames_of(data, "checker")
    assert not checker & (set(seen["va_mask"]) | set(seen["au_mask"]))     # validation videos stay out


def test_the_report_counts_each_tasks_validation_files(world):
    tree, report = world["tree"], world["report"]
    n_frames = {name: 36 if name == "mixed" else 40 if name == "trainer" else 30 for name in tree.written}
    for task in ("VA", "EXPR", "AU"):
        count, videos = labelled_lines(tree, task, "validation", n_frames)
        key = {"VA": 0, "EXPR": 1, "AU": 2}[task]                           # + mtl_val: validation for all tasks
        present = [np.isfinite(r[key]).all() if task == "VA" else (np.asarray(r[key]) >= 0).all()
                   for r in tree.mtl_rows["mtl_val"].values()]
        mtl_frames, mtl_videos = int(sum(present)), 1
        assert report["tasks"][task]["n_frames"] == count + mtl_frames, task
        assert report["tasks"][task]["n_videos"] == videos + mtl_videos, task
    assert report["tasks"]["EXPR"]["n_videos"] == 2                        # mixed and mtl_val


def test_expr_is_scored_on_exactly_those_frames(world):
    data, report = world["data"], world["report"]
    recipe, model, _ = load_trained(world["root"] / "run", "best.pt", "cpu")
    videos = np.array([data.video_ids.index(v) for v in ("mixed", "checker", "mtl_val")])
    idx, raw = predict_videos(model, recipe, data.to("cpu"), videos)
    keep = (data.expr[idx] >= 0) & data.in_split("validation", "EXPR")[idx]
    want = f1_score(data.expr[idx][keep], raw["expr"].argmax(1)[keep], labels=range(8), average="macro",
                    zero_division=0)
    assert report["f1_expr"] == pytest.approx(want, abs=1e-9)
    assert int(keep.sum()) == report["tasks"]["EXPR"]["n_frames"]


def test_p_mtl_comes_from_the_mtl_validation_set(world):
    report, tree = world["report"], world["tree"]
    assert report["mtl_on"] == "the MTL validation set"
    listed = [k for k, (va, expr, au) in tree.mtl_rows["mtl_val"].items()
              if np.isfinite(va).all() or expr >= 0 or (np.asarray(au) >= 0).any()]
    assert report["tasks"]["MTL"]["n_frames"] == len(listed) and report["tasks"]["MTL"]["n_videos"] == 1
    assert report["p_mtl"] == report["tasks"]["MTL"]["p_mtl"]
    assert "P_MTL on the MTL validation set" in world["output"]


def test_labels_from_before_per_task_splits_are_refused_until_relabelled(world, tmp_path):
    """An older cache (labels without `splits`) is never read as valid: training refuses it in one
    line naming the fix, and `emokd cache relabel DATASET CACHE` restores the per-task splits."""
    import shutil

    url = tmp_path / "old.zarr"
    shutil.copytree(world["root"] / "cache.zarr", url)
    cache = FeatureCache.open(url, mode="r+")
    for key in cache.shard_keys():
        labels = cache.root[f"shards/{key}/labels"]
        labels.attrs["items"] = {k: v for k, v in labels.attrs["items"].items() if k != "splits"}
    result = CliRunner().invoke(main, ["train-from-cache", "--cache", str(url), "--run", str(tmp_path / "r"),
                                       "--device", "cpu", "--epochs", "1"])
    assert result.exit_code == 2
    assert "written before per-task splits; run `emokd cache relabel DATASET CACHE`" in result.output
    assert not (tmp_path / "r" / "metrics.csv").exists()
    result = CliRunner().invoke(main, ["cache", "relabel", str(world["tree"].root), str(url)])
    assert result.exit_code == 0, result.output
    labels = FeatureCache.open(url).read_labels("mixed")
    assert labels["splits"] == {"VA": "train", "EXPR": "validation", "AU": "unlabelled", "MTL": "unlabelled"}
    assert len(load_frame_data(FeatureCache.open(url), ["validation"], 2, 1).video_ids) == 3
