"""One convention for every command: --run, dataset before cache, --device auto|cpu|cuda|cuda:N,
-v/-q before or after the subcommand, defaults shown in --help, old spellings kept with a note."""

import click
import pytest
import yaml
from click.testing import CliRunner

from emokd.cli import main
from emokd.testing.caches import SyntheticSpec, write_synthetic_cache

OPTIONS = {"lstm_hidden": 8, "extractor": [16, 8], "heads": [8], "discriminator": [4], "dropout": 0.3}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def all_commands(group=main, prefix=()):
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, path)
        else:
            yield path, command


def test_every_option_with_a_default_shows_it_in_help():
    missing = []
    for path, command in all_commands():
        with click.Context(command, info_name=" ".join(path), show_default=True) as ctx:
            for param in command.params:
                if not isinstance(param, click.Option) or param.is_flag or param.hidden:
                    continue
                record = param.get_help_record(ctx)
                default = param.get_default(ctx, call=False)
                given = default is not None and type(default).__name__ != "Sentinel"   # click's UNSET
                if given and "[default:" not in record[1]:
                    missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert missing == []


def test_every_command_that_runs_a_model_takes_the_same_device_option():
    devices = {" ".join(p): c for p, c in all_commands() if any(o.name == "device" for o in c.params)}
    assert {"extract-features", "train-from-cache", "evaluate", "predict", "inspect"} <= set(devices)
    for name, command in devices.items():
        option = next(o for o in command.params if o.name == "device")
        assert option.default == "auto", name
        assert option.type.convert("cuda:1", option, None) == "cuda:1"
        assert option.type.get_metavar(option, None) == "[auto|cpu|cuda|cuda:N]"
    result = invoke("evaluate", "--run", ".", "--cache", "x", "--device", "gpu")
    assert result.exit_code == 2 and "'gpu' is not one of auto, cpu, cuda, cuda:N" in result.output


def test_commands_that_read_a_run_name_it_run():
    for path, command in all_commands():
        names = {opt for p in command.params for opt in getattr(p, "opts", [])}
        if path[0] in ("evaluate", "predict", "inspect", "train-from-cache"):
            assert "--run" in names, path


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_and_quiet_before_or_after_the_subcommand(tmp_path, where):
    missing = tmp_path / "nothing.zarr"
    args = ["cache", "info", str(missing)]
    verbose = ["-v", *args] if where == "before" else [*args, "-v"]
    result = CliRunner().invoke(main, verbose)
    assert result.exit_code != 0 and result.exception is not None      # -v: the traceback is not hidden
    assert not isinstance(result.exception, SystemExit)
    quiet = ["-q", *args] if where == "before" else [*args, "-q"]
    result = CliRunner().invoke(main, quiet)
    assert result.exit_code == 2 and "no feature cache there" in result.output
    result = CliRunner().invoke(main, ["index", str(tmp_path), "-v", "--no-probe"])
    assert "No such option" not in result.output


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("conv")
    url = str(root / "cache.zarr")
    write_synthetic_cache(url, SyntheticSpec(n_videos=3, frames_per_video=40, face_dim=4, audio_dim=3))
    config = root / "train.yaml"
    config.write_text(yaml.safe_dump({"epochs": 1, "batch_size": 16, "window": 2, "stride": 1, "device": "cpu",
                                      "export_soft": False, "recipe_options": OPTIONS}))
    return root, url, config


def test_old_spellings_still_work_with_a_deprecation_note(small_run):
    root, url, config = small_run
    result = invoke("train-from-cache", "--cache", url, "--config", config, "--out", root / "old")
    assert result.exit_code == 0, result.output
    assert "DeprecationWarning" in result.output and "--run" in result.output
    assert (root / "old" / "best.pt").is_file()
    saved = yaml.safe_load((root / "old" / "config.yaml").read_text())
    assert saved["run"] == str((root / "old").resolve()) and "out" not in saved
    result = invoke("evaluate", root / "old", "--cache", url, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "DeprecationWarning" in result.output and "saved" in result.output
    result = invoke("evaluate", "--run", root / "old", "--cache", url, "--device", "cpu")
    assert result.exit_code == 0 and "DeprecationWarning" not in result.output
    result = invoke("evaluate", "--cache", url)
    assert result.exit_code == 2 and "Missing option '--run'" in result.output


def test_an_old_config_key_is_read_with_a_note(small_run, tmp_path):
    root, url, config = small_run
    old = tmp_path / "old.yaml"
    old.write_text(config.read_text() + f"out: {tmp_path / 'run'}\ncache: {url}\n")
    result = invoke("train-from-cache", "--config", old)
    assert result.exit_code == 0, result.output
    assert "key 'out' is deprecated, use 'run'" in result.output
    assert (tmp_path / "run" / "best.pt").is_file()


@pytest.mark.parametrize("suffix, text", [(".yaml", "lr: 1e-4\nepochs: 1\n"), (".toml", "lr = 1e-4\nepochs = 1\n")])
def test_lr_1e_4_trains_from_yaml_and_toml(small_run, tmp_path, suffix, text):
    root, url, _ = small_run
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    result = invoke("train-from-cache", "--cache", url, "--config", path, "--run", tmp_path / "r",
                    "--batch-size", 16, "--window", 2, "--stride", 1, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["lr"] == 0.0001


def test_a_wrong_type_is_refused_before_any_file_is_written(small_run, tmp_path):
    root, url, _ = small_run
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: fast\n")
    result = invoke("train-from-cache", "--cache", url, "--config", bad, "--run", tmp_path / "r")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {bad}: lr: 'fast' is not a float"]
    assert not (tmp_path / "r").exists()
    result = invoke("train-from-cache", "--cache", url, "--run", tmp_path / "r", "--epochs", "many")
    assert result.exit_code == 2 and "'many' is not a valid integer" in result.output
    assert not (tmp_path / "r").exists()


def test_config_show_is_accepted_back_by_config(small_run, tmp_path):
    from emokd.config import load_config, to_dict
    from emokd.extract.config import ExtractConfig
    from emokd.train.config import TrainConfig
    from emokd.train.recipes.vu2021.recipe import Vu2021

    result = invoke("config", "show", "extract")
    assert result.exit_code == 0 and "# crop_size (int): face crop size in pixels\ncrop_size: 112\n" in result.output
    (tmp_path / "extract.yaml").write_text(result.output)
    assert load_config(ExtractConfig, tmp_path / "extract.yaml") == ExtractConfig()

    result = invoke("config", "show", "train", "--recipe", "vu2021")
    assert result.exit_code == 0 and "recipe: vu2021\n" in result.output and "  va_bins:" in result.output
    shown = tmp_path / "train.yaml"
    shown.write_text(result.output)
    cfg = load_config(TrainConfig, shown)
    assert cfg.recipe == "vu2021" and cfg.lr == 1e-4 and cfg.recipe_options == to_dict(Vu2021.Config())

    root, url, _ = small_run                       # the jeong2022 file, edited, trains
    text = invoke("config", "show", "train").output
    edited = (text.replace("epochs: 20", "epochs: 1").replace("lstm_hidden: 512", "lstm_hidden: 8")
              .replace("extractor: [1024, 512]", "extractor: [16, 8]").replace("heads: [256, 128]", "heads: [8]")
              .replace("window: 6", "window: 2").replace("stride: 10", "stride: 1").replace("device: auto", "device: cpu")
              .replace("export_soft: true", "export_soft: false"))
    shown.write_text(edited)
    result = invoke("train-from-cache", "--config", shown, "--cache", url, "--run", tmp_path / "from_shown")
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "from_shown" / "config.yaml").read_text())
    assert saved["recipe_options"]["lstm_hidden"] == 8 and saved["epochs"] == 1


def test_quiet_leaves_only_the_result_on_the_console(small_run, tmp_path):
    root, url, config = small_run
    loud = invoke("train-from-cache", "--cache", url, "--config", config, "--run", tmp_path / "loud")
    quiet = invoke("train-from-cache", "--cache", url, "--config", config, "--run", tmp_path / "quiet", "-q")
    assert loud.exit_code == quiet.exit_code == 0, quiet.output
    assert "epoch 1/1" in loud.output and "epoch 1/1" not in quiet.output
    assert quiet.output.lstrip().startswith("{") and '"best_epoch"' in quiet.output
    assert "epoch 1/1" in (tmp_path / "quiet" / "train.log").read_text()      # the log keeps everything
