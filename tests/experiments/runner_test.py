"""Training runs, their files, resuming, reports and the fair part."""

import csv
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

import keras_lr
from keras_lr.experiments import _files
from keras_lr.experiments import plan
from keras_lr.experiments import runner
from keras_lr.experiments.errors import UsageError


def settings_for(tmp_path, **overrides):
    values = dict(
        dataset="digits",
        epochs=2,
        batch_size=32,
        seeds=[0],
        out=tmp_path / "runs",
        parts=["lr"],
        optimizers=["adam"],
        range_test_steps=10,
        quiet=True,
    )
    values.update(overrides)
    return runner.Settings(**values)


def read_history(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def spec_of(optimizer, rate, seed=0, part="optimizers"):
    return plan.RunSpec(part, "exp", f"{optimizer}", optimizer, rate, seed)


def test_one_run_writes_config_history_and_summary(tmp_path, small_digits):
    settings = settings_for(tmp_path, epochs=5)
    spec = spec_of("sgd_annealing", 0.05)
    summary = runner.train_run(spec, small_digits, settings, tmp_path / "r")
    rows = read_history(tmp_path / "r" / "history.csv")
    assert list(rows[0]) == list(runner.HISTORY_COLUMNS)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    # 5 epochs: the rate drops after epoch round(2.0) = 2 and round(3.5) = 4.
    np.testing.assert_allclose(
        [float(r["lr"]) for r in rows],
        [0.05, 0.05, 0.005, 0.005, 0.0005],
        rtol=1e-6,
    )
    for row in rows:
        # 32 validation images: accuracy is a whole number of them.
        count = float(row["val_accuracy"]) * 32
        assert count == pytest.approx(round(count), abs=1e-4)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["seed"] == 0
    assert config["spec"]["learning_rate"] == 0.05
    assert config["optimizer"]["class_name"] == "SGD"
    assert config["schedule"]["config"]["values"] == pytest.approx(
        [0.05, 0.005, 0.0005]
    )
    assert config["schedule"]["config"]["boundaries"] == [5, 11]
    saved = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert saved == summary and saved["complete"] is True
    assert saved["final"]["val_loss"] == pytest.approx(
        float(rows[-1]["val_loss"])
    )
    assert saved["epochs_run"] == 5
    assert {"tensorflow", "keras", "numpy"} <= set(saved["versions"])
    assert saved["hardware"]["cpu_count"] >= 1
    assert not list((tmp_path / "r").glob(".*"))


def test_same_seed_same_history_other_seed_differs(tmp_path, small_digits):
    settings = settings_for(tmp_path)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        spec = spec_of("adam", 0.001, seed=seed)
        runner.train_run(spec, small_digits, settings, tmp_path / name)
    a, b, c = (read_history(tmp_path / n / "history.csv") for n in "abc")
    assert a == b
    assert a != c


def _mtimes(folder):
    return {
        p.relative_to(folder): p.stat().st_mtime_ns
        for p in folder.rglob("summary.json")
    }


def test_rerun_skips_complete_runs_and_redoes_the_rest(
    tmp_path, small_digits, capsys
):
    settings = settings_for(tmp_path, epochs=1)
    runner.reproduce(small_digits, settings)
    first = _mtimes(settings.out)
    assert len(first) == 3
    runner.reproduce(small_digits, settings)
    assert _mtimes(settings.out) == first
    assert capsys.readouterr().out.count("complete before: skipped") == 3

    # An interrupted run (no summary) is redone; the others are kept.
    redo = settings.out / "digits_adam_lrs" / "adam_lr0.01_seed0"
    (redo / "summary.json").unlink()
    runner.reproduce(small_digits, settings)
    now = _mtimes(settings.out)
    changed = {k for k in now if now[k] != first.get(k)}
    assert changed == {Path("digits_adam_lrs/adam_lr0.01_seed0/summary.json")}

    # A different configuration (more epochs) never reuses old results.
    runner.reproduce(small_digits, dataclasses.replace(settings, epochs=2))
    later = _mtimes(settings.out)
    assert all(later[k] != now[k] for k in later)


def test_interrupted_run_leaves_no_summary(tmp_path, small_digits, monkeypatch):
    settings = settings_for(tmp_path, epochs=3)
    original = runner._EpochRecorder.make

    def interrupting():
        callback = original()
        record = callback.on_epoch_end

        def on_epoch_end(epoch, logs=None):
            record(epoch, logs)
            if epoch == 1:
                raise KeyboardInterrupt

        callback.on_epoch_end = on_epoch_end
        return callback

    monkeypatch.setattr(runner._EpochRecorder, "make", interrupting)
    with pytest.raises(KeyboardInterrupt):
        runner.reproduce(small_digits, settings)
    run_dir = settings.out / "digits_adam_lrs" / "adam_lr0.1_seed0"
    assert (run_dir / "config.json").is_file()
    assert not (run_dir / "summary.json").exists()
    assert not (run_dir / "history.csv").exists()
    assert not [p for p in settings.out.rglob("*") if p.name.endswith(".tmp")]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    _files.write_json(path, {"complete": True})

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(_files.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        _files.write_json(path, {"complete": False})
    assert json.loads(path.read_text()) == {"complete": True}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_table_is_mean_and_std_of_the_histories(tmp_path, small_digits):
    settings = settings_for(tmp_path, epochs=1, seeds=[0, 1, 2])
    runner.reproduce(small_digits, settings)
    folder = settings.out / "digits_adam_lrs"
    table = (folder / "results.md").read_text()
    assert (folder / "curves.png").stat().st_size > 10_000
    for rate in ("0.1", "0.01", "0.001"):
        finals = [
            float(
                read_history(folder / f"adam_lr{rate}_seed{s}/history.csv")[-1][
                    "val_accuracy"
                ]
            )
            for s in (0, 1, 2)
        ]
        mean = sum(finals) / 3
        std = (sum((v - mean) ** 2 for v in finals) / 2) ** 0.5
        line = next(
            ln for ln in table.splitlines() if f"Adam lr={rate} |" in ln
        )
        cells = [c.strip() for c in line.split("|")]
        assert cells[3] == "0, 1, 2"
        assert cells[4] == f"{mean:.3f} ± {std:.3f}"


def test_progress_estimates_time_left(monkeypatch):
    # start; begin a (elapsed, task start); end a; begin b (2); end b.
    clock = iter([0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 30.0])
    monkeypatch.setattr(runner.time, "monotonic", lambda: next(clock))
    lines = []

    class Stream:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    progress = runner.Progress(4, stream=Stream())
    progress.begin("a")
    progress.end()
    progress.begin("b")
    progress.end()
    text = "".join(lines)
    assert "[1/4 | elapsed 0:00:00 | left ~?] a" in text
    # One task took 10 s and 3 are left.
    assert "[2/4 | elapsed 0:00:10 | left ~0:00:30] b" in text


class FakeResult:
    """Stands in for the range test's result: a valley at `rate`."""

    def __init__(self, rate):
        self.rate = rate
        self.learning_rates = np.geomspace(1e-6, 10.0, 10)
        self.losses = (np.log10(self.learning_rates) - np.log10(rate)) ** 2

    def suggestion(self, method="valley"):
        return self.rate

    def plot(self, path=None, ax=None):
        ax.plot(self.learning_rates, self.losses)
        ax.set_xscale("log")
        return ax

    def to_dict(self):
        return {
            "learning_rates": self.learning_rates,
            "losses": self.losses,
        }


def test_fair_part_trains_at_the_range_test_pick(
    tmp_path, small_digits, monkeypatch
):
    picks = {"adam": 0.004, "adadelta": 0.8}
    calls = []

    def fake_find(model, x, y=None, *, batch_size=32, **kwargs):
        name = type(model.optimizer).__name__.lower()
        calls.append((name, batch_size, kwargs["num_steps"], kwargs["repeats"]))
        return FakeResult(picks[name])

    monkeypatch.setattr(keras_lr, "find_learning_rate", fake_find, False)
    settings = settings_for(
        tmp_path, parts=["fair"], optimizers=["adam", "adadelta"]
    )
    runner.reproduce(small_digits, settings)
    assert calls == [("adam", 32, 10, 3), ("adadelta", 32, 10, 3)]
    folder = settings.out / "digits_optimizers_range_test_lr"
    for name, rate in picks.items():
        record = json.loads((folder / f"range_tests/{name}.json").read_text())
        assert record["suggestion"] == rate
        assert len(record["range_test"]["losses"]) == 10
        assert (folder / f"range_tests/{name}.png").is_file()
        rows = read_history(folder / f"{name}_seed0" / "history.csv")
        assert float(rows[0]["lr"]) == pytest.approx(rate, rel=1e-6)
    assert re.search(
        r"\| Adadelta \| 0\.8 \|", (folder / "results.md").read_text()
    )
    # Resuming reuses the range tests as well as the runs.
    runner.reproduce(small_digits, settings)
    assert len(calls) == 2


def test_fair_part_without_range_test_fails_before_writing(
    tmp_path, small_digits, monkeypatch
):
    monkeypatch.delattr(keras_lr, "find_learning_rate", raising=False)
    settings = settings_for(tmp_path, parts=["lr", "fair"])
    with pytest.raises(UsageError, match="find_learning_rate"):
        runner.reproduce(small_digits, settings)
    assert not settings.out.exists()
