"""The `keras-lr` command line: options, one-line errors, end to end.

The subprocess tests run `python -m keras_lr_experiments` (what the
`keras-lr` console script runs) as a user would (without
the test suite's `TF_CPP_MIN_LOG_LEVEL`, so TensorFlow's log lines would
show) and check that parsing and the checks that need no TensorFlow run
without importing it.
"""

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keras_lr_experiments import cli
from keras_lr_experiments import optimizers
from tests.repository import git_ignores

ROOT = str(Path(__file__).resolve().parents[2])
HEAVY = {"tensorflow", "keras"}
# Parses and checks the arguments given after the snippet, then prints
# which heavy modules that imported.
CHECK_SNIPPET = """
import sys
from keras_lr_experiments import cli
args = cli.build_parser().parse_args(sys.argv[1:])
cli.check_arguments(args)
print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""


def run_cli(capsys, *argv):
    """Exit code, stdout and stderr of `keras-lr argv...`, in process."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_python(*arguments, cwd):
    """`python arguments...` in a subprocess, in a user's environment."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p
    )
    return subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
    )


def _image_folder(root, classes):
    from PIL import Image

    for name in classes:
        (root / name).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(root / name / "a.png")
    return root


@pytest.mark.parametrize("command", ["reproduce", "find"])
def test_parsing_and_checking_import_no_tensorflow(tmp_path, command):
    data = _image_folder(tmp_path / "data", ["cats", "dogs"])
    out = tmp_path / "out"
    done = run_python(
        "-c", CHECK_SNIPPET, command, "--data-dir", str(data),
        "--out", str(out), "--batch-size", "8",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["reproduce", "--help"],
        ["find", "--help"],
        ["tune", "--help"],
    ],
)
def test_help_imports_no_tensorflow(tmp_path, argv):
    done = run_python(
        "-X", "importtime", "-m", "keras_lr_experiments", *argv, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: keras-lr {' '.join(argv[:-1])}")
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "keras_lr_experiments" in imported  # the import log was read
    assert not imported & HEAVY


def test_help_takes_a_fraction_of_importing_tensorflow(tmp_path):
    # A ratio, not a bare time: both sides slow down together on a busy
    # machine. The help needs no TensorFlow, so it takes a few percent.
    start = time.perf_counter()
    done = run_python(
        "-m", "keras_lr_experiments", "reproduce", "--help", cwd=tmp_path
    )
    help_seconds = time.perf_counter() - start
    assert done.returncode == 0
    start = time.perf_counter()
    run_python("-c", "import tensorflow", cwd=tmp_path)
    tensorflow_seconds = time.perf_counter() - start
    assert help_seconds < 0.5 * tensorflow_seconds


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ("reproduce", "--epochs", "0"),
            ("argument --epochs:", "must be an integer > 0", "received '0'"),
        ),
        (
            ("reproduce", "--dataset", "mnist"),
            ("argument --dataset:", "invalid choice: 'mnist'", "stanford_dogs"),
        ),
        (
            ("find", "--optimizer", "lion"),
            ("argument --optimizer:", "invalid choice: 'lion'", "adadelta"),
        ),
        (
            ("reproduce", "--parts", "all"),
            ("argument --parts:", "invalid choice: 'all'", "optimizers"),
        ),
        (
            ("find", "--start-lr", "1", "--end-lr", "0.5"),
            (
                "Argument `--end-lr` must be > `--start-lr`.",
                "Received: --start-lr=1.0, --end-lr=0.5",
            ),
        ),
        (
            ("reproduce", "--data-dir", "{tmp}/missing"),
            (
                "Argument `--data-dir` must be an existing folder",
                "Received: --data-dir='{tmp}/missing' (not a folder)",
            ),
        ),
        (
            ("reproduce", "--out", "{tmp}/file/runs"),
            (
                "Argument `--out` must be a writable folder.",
                "Received: --out='{tmp}/file/runs'",
            ),
        ),
    ],
)
def test_bad_argument_is_one_line_on_stderr(tmp_path, argv, expected):
    (tmp_path / "file").write_text("a file, not a folder")
    argv = [a.format(tmp=tmp_path) for a in argv]
    done = run_python("-m", "keras_lr_experiments", *argv, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"keras-lr {argv[0]}: error: ")
    for text in expected:
        assert text.format(tmp=tmp_path) in lines[0]
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_console_script_runs_this_main():
    tomllib = pytest.importorskip("tomllib")
    app = Path(ROOT) / "keras_lr_experiments" / "pyproject.toml"
    with open(app, "rb") as handle:
        scripts = tomllib.load(handle)["project"]["scripts"]
    module, function = scripts["keras-lr"].split(":")
    assert module == "keras_lr_experiments.cli"
    assert getattr(importlib.import_module(module), function) is cli.main


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
        (
            ("find", "--start-lr", "2", "--end-lr", "2"),
            "`--end-lr` must be > `--start-lr`. Received: --start-lr=2.0",
        ),
        (
            ("reproduce", "--dataset", "digits", "--data-dir", "."),
            "`--dataset` and `--data-dir` are exclusive",
        ),
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
    from tests.experiments.fakes import FakeResult

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


@pytest.mark.slow
def test_quick_reproduction_of_every_part_with_the_real_range_test(
    capsys, tmp_path
):
    out = tmp_path / "runs"
    # Part `choose` has its own end-to-end test (choose_test.py).
    code, stdout, _ = run_cli(
        capsys, "reproduce", "--quick", "--quiet", "--out", str(out),
        "--parts", "lr", "optimizers", "fair",
    )  # fmt: skip
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
        capsys, "reproduce", "--quick", "--quiet", "--out", str(out),
        "--parts", "lr", "optimizers", "fair",
    )  # fmt: skip
    assert code == 0
    assert stdout.count("skipped") == 13 and "done before" in stdout


def test_tune_parsing_and_checking_import_no_tensorflow_nor_ray(tmp_path):
    snippet = CHECK_SNIPPET.replace(
        '("tensorflow", "keras")', '("tensorflow", "keras", "ray")'
    )
    done = run_python(
        "-c", snippet, "tune", "--study", "--seeds", "0", "1",
        "--out", str(tmp_path / "out"), "--address", "auto",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ("tune", "--epochs", "6", "--perturbation-interval", "6"),
            "Argument `--perturbation-interval` must be < `--epochs` (with a "
            "longer interval no trial is ever perturbed). Received: "
            "--perturbation-interval=6, --epochs=6",
        ),
        (
            ("tune", "--population", "1"),
            "Argument `--population` must be >= 2 (PBT copies one trial into "
            "another). Received: --population=1",
        ),
        (
            ("tune", "--mutate", "lr"),
            "argument --mutate: invalid choice: 'lr' (choose from "
            "'learning_rate', 'batch_size')",
        ),
        (("tune", "--scheduler", "hyperband"), "--scheduler: invalid choice"),
        (("tune", "--address", " "), "Argument `--address` must name a Ray"),
        (("tune", "--epochs", "0"), "must be an integer > 0"),
    ],
)
def test_tune_bad_options_are_one_line_and_exit_2(
    capsys, tmp_path, argv, expected
):
    code, out, err = run_cli(capsys, *argv, "--out", str(tmp_path / "out"))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "out").exists()


def test_tune_asha_writes_the_trials(capsys, tmp_path):
    # Ray in this process, 2 CPUs: 3 trials of 2 epochs; ASHA stops some
    # after the first.
    import ray

    out = tmp_path / "runs"
    try:
        code, stdout, _ = run_cli(
            capsys, "tune", "--scheduler", "asha", "--samples", "3",
            "--epochs", "2", "--perturbation-interval", "1",
            "--num-cpus", "2", "--out", str(out),
        )  # fmt: skip
    finally:
        ray.shutdown()
    assert code == 0
    trials = json.loads((out / "trials_asha_seed0.json").read_text())
    assert len(trials) == 3
    assert all(t["error"] is None for t in trials)
    epochs = sorted(len(t["history"]) for t in trials)
    assert epochs[-1] == 2 and epochs[0] >= 1
    assert "asha seed 0: 3 trials, " in stdout


@pytest.mark.parametrize(
    "argv, default",
    [
        (["reproduce"], "runs"),
        (["reproduce", "--quick"], "runs/quick"),
        (["reproduce", "--out", "saved_runs"], "saved_runs"),
    ],
)
def test_reproduce_writes_committed_results_only_when_named(
    capsys, tmp_path, monkeypatch, argv, default
):
    # `--quick` once wrote its 2-epoch runs into the committed saved_runs/.
    from keras_lr_experiments import runner

    seen = {}
    monkeypatch.setattr(
        runner, "reproduce", lambda data, settings: seen.update(vars(settings))
    )
    monkeypatch.setattr(
        cli, "_load_data", lambda args: argparse.Namespace(name="digits")
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *argv, "--parts", "lr")
    assert code == 0, err
    assert seen["out"] == Path(default)
    assert git_ignores(seen["out"] / "a_run") == (default != "saved_runs")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["reproduce", "find", "tune"])
def test_every_default_output_folder_is_git_ignored(command):
    args = cli.build_parser().parse_args([command])
    out = args.out if args.out is not None else cli.DEFAULT_OUT
    assert not out.is_absolute()
    assert git_ignores(out / "results.md"), out
