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
