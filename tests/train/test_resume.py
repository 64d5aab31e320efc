"""--resume after a real kill (SIGKILL of a training process) ends with the same metrics and weights
as an uninterrupted run with the same seed."""

import csv
import subprocess
import sys
import time

import pytest
import torch
import yaml
from click.testing import CliRunner

from emokd.cli import main
from emokd.errors import ConfigError
from emokd.train.loop import train
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache
from emokd.train.config import TrainConfig

TIMING = ("samples_per_s", "epoch_s")
OPTIONS = {"lstm_hidden": 16, "extractor": [32, 16], "heads": [16], "discriminator": [8], "dropout": 0.3}


def rows(run):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(open(run / "metrics.csv"))]


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    url = str(tmp_path / "cache.zarr")
    write_synthetic_cache(url, SyntheticSpec(n_videos=4, frames_per_video=300, face_dim=8, audio_dim=4))
    settings = dict(cache=url, epochs=6, batch_size=32, lr=2e-3, window=3, stride=2, seed=7, device="cpu",
                    patience=100, export_soft=False, recipe_options=OPTIONS)
    train(TrainConfig(run=str(tmp_path / "straight"), **settings))

    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in settings.items() if k != "cache"}))
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "emokd", "train-from-cache", "--cache", url,
                             "--run", str(killed), "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (killed / "last.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert proc.returncode != 0, "training finished before it could be killed"
    done = torch.load(killed / "last.pt", weights_only=False)["epoch"]
    assert done < 5                                         # killed part-way
    assert (killed / "curves.png").is_file()                # drawn every epoch: the killed run has it

    result = CliRunner().invoke(main, ["train-from-cache", "--run", str(killed), "--resume"])
    assert result.exit_code == 0, result.output
    assert rows(killed) == rows(tmp_path / "straight")
    a = torch.load(killed / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 5
    for key in b["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_resume_with_another_network_is_refused(tmp_path):
    url = str(tmp_path / "cache.zarr")
    write_synthetic_cache(url, SyntheticSpec(n_videos=2, frames_per_video=60, face_dim=8, audio_dim=4))
    settings = dict(cache=url, run=str(tmp_path / "run"), batch_size=32, window=3, stride=2, device="cpu",
                    export_soft=False, recipe_options=OPTIONS)
    train(TrainConfig(epochs=1, **settings))
    with pytest.raises(ConfigError, match=r"last.pt: its network .*'window': 3.* differs from the one this config"):
        train(TrainConfig(epochs=2, **{**settings, "window": 4}), resume=True)
