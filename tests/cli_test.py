"""The `keras-lr` command line: options, one-line errors, end to end."""

import json
import subprocess
import sys

import pytest

from keras_lr import cli
from keras_lr.experiments import datasets
from keras_lr.experiments import optimizers
from keras_lr.experiments import plan


def run_cli(capsys, *argv):
    """Exit code, stdout and stderr of `keras-lr argv...`."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_names_match_the_experiments():
    assert cli.DATASETS == datasets.DATASETS
    assert cli.OPTIMIZERS == optimizers.OPTIMIZERS
    assert cli.PARTS == plan.PARTS


def test_help_lists_every_option(capsys):
    code, out, _ = run_cli(capsys, "reproduce", "--help")
    assert code == 0
    for option in (
        "--dataset", "--data-dir", "--epochs", "--seeds", "--batch-size",
        "--out", "--parts", "--quick", "--quiet",
    ):  # fmt: skip
        assert option in out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (("reproduce", "--dataset", "mnist"), "--dataset: invalid choice"),
        (("reproduce", "--parts", "all"), "--parts: invalid choice"),
        (("find", "--optimizer", "lion"), "--optimizer: invalid choice"),
        (("reproduce", "--epochs", "0"), "must be an integer > 0"),
        (("reproduce", "--seeds", "-1"), "must be an integer >= 0"),
        (("find", "--end-lr", "nan"), "must be a finite number > 0"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(capsys, argv, expected):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and expected in err


def test_missing_data_dir_writes_nothing(capsys, tmp_path):
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "reproduce", "--data-dir", str(tmp_path / "nope"),
        "--out", str(out), "--parts", "lr",
    )  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1 and "--data-dir" in err and "nope" in err
    assert not out.exists()


def test_one_class_folder_writes_nothing(capsys, tmp_path):
    from PIL import Image

    (tmp_path / "data" / "only").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "data" / "only" / "a.png")
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "reproduce", "--data-dir", str(tmp_path / "data"),
        "--out", str(out), "--parts", "lr",
    )  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1 and "at least 2 class subfolders" in err
    assert not out.exists()


def test_unwritable_output_is_one_line(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    code, _, err = run_cli(
        capsys, "reproduce", "--quick", "--parts", "lr",
        "--out", str(blocker / "runs"),
    )  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1 and "--out" in err and "writable" in err


def test_quick_reproduction_writes_results(capsys, tmp_path):
    out = tmp_path / "runs"
    code, stdout, _ = run_cli(
        capsys, "reproduce", "--quick", "--quiet", "--parts", "optimizers",
        "--optimizers", "adam", "sgd_annealing", "--out", str(out),
    )  # fmt: skip
    assert code == 0
    assert "[1/2 |" in stdout and "[2/2 |" in stdout
    folder = out / "digits_optimizers_lr0.001"
    for run in ("adam_lr0.001_seed0", "sgd_annealing_lr0.001_seed0"):
        summary = json.loads((folder / run / "summary.json").read_text())
        assert summary["complete"] is True and summary["epochs_run"] == 2
    assert (folder / "results.md").is_file() and (
        folder / "curves.png"
    ).is_file()


def test_find_writes_curve_and_numbers(capsys, tmp_path, monkeypatch):
    import keras_lr
    from tests.experiments.runner_test import FakeResult

    seen = {}

    def fake_find(model, x, y=None, **kwargs):
        seen.update(kwargs, optimizer=type(model.optimizer).__name__)
        return FakeResult(0.0123)

    monkeypatch.setattr(keras_lr, "find_learning_rate", fake_find, False)
    out = tmp_path / "rt"
    code, stdout, _ = run_cli(
        capsys, "find", "--optimizer", "rmsprop", "--num-steps", "50",
        "--end-lr", "3", "--out", str(out),
    )  # fmt: skip
    assert code == 0
    assert "rmsprop: suggested learning rate 0.0123" in stdout
    assert seen["optimizer"] == "RMSprop"
    assert seen["num_steps"] == 50 and seen["end_lr"] == 3.0
    assert seen["start_lr"] == 1e-7 and seen["repeats"] == 3
    record = json.loads((out / "range_test_digits_rmsprop.json").read_text())
    assert record["suggestion"] == 0.0123
    assert (out / "range_test_digits_rmsprop.png").stat().st_size > 5_000


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "keras_lr", "reproduce", "--parts", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "keras-lr reproduce: error: argument --parts" in done.stderr


@pytest.mark.slow
def test_quick_reproduction_of_every_part_with_the_real_range_test(
    capsys, tmp_path
):
    out = tmp_path / "runs"
    code, stdout, _ = run_cli(
        capsys, "reproduce", "--quick", "--quiet", "--out", str(out)
    )
    assert code == 0
    # 5 range tests, 3 + 5 + 5 runs.
    assert "[18/18 |" in stdout
    fair = out / "digits_optimizers_range_test_lr"
    for name in optimizers.OPTIMIZERS:
        record = json.loads((fair / f"range_tests/{name}.json").read_text())
        config = json.loads((fair / f"{name}_seed0/config.json").read_text())
        assert config["spec"]["learning_rate"] == record["suggestion"] > 0
    for experiment in ("adam_lrs", "optimizers_lr0.001"):
        assert (out / f"digits_{experiment}" / "results.md").is_file()
    # Everything is complete: a second call trains nothing.
    code, stdout, _ = run_cli(
        capsys, "reproduce", "--quick", "--quiet", "--out", str(out)
    )
    assert code == 0
    assert stdout.count("skipped") == 13 and "done before" in stdout
