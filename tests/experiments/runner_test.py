"""`reproduce`: resuming, interruptions, reports and the fair part."""

import csv
import dataclasses
import json
import re
from pathlib import Path

import pytest

import keras_lr
from keras_lr_experiments import runner
from keras_lr_experiments import training
from keras_lr_experiments.errors import UsageError
from tests.experiments.fakes import FakeRace


def read_history(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _mtimes(folder):
    return {
        p.relative_to(folder): p.stat().st_mtime_ns
        for p in folder.rglob("summary.json")
    }


def test_rerun_skips_complete_runs_and_redoes_the_rest(
    tmp_path, small_digits, settings_for, capsys
):
    settings = settings_for(tmp_path, epochs=1)
    runner.reproduce(small_digits, settings)
    first = _mtimes(settings.out)
    assert len(first) == 3
    assert "done: 3 runs in 0:" in capsys.readouterr().out
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


def test_interrupted_run_leaves_no_summary(
    tmp_path, small_digits, settings_for, monkeypatch
):
    settings = settings_for(tmp_path, epochs=3)

    class Interrupting(training.EpochRecorder):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if epoch == 1:
                raise KeyboardInterrupt

    monkeypatch.setattr(training, "EpochRecorder", Interrupting)
    with pytest.raises(KeyboardInterrupt):
        runner.reproduce(small_digits, settings)
    run_dir = settings.out / "digits_adam_lrs" / "adam_lr0.1_seed0"
    assert (run_dir / "config.json").is_file()
    assert not (run_dir / "summary.json").exists()
    assert not (run_dir / "history.csv").exists()
    assert not [p for p in settings.out.rglob("*") if p.name.endswith(".tmp")]


def test_table_is_mean_and_std_of_the_histories(
    tmp_path, small_digits, settings_for
):
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


def test_fair_part_trains_at_the_rate_the_race_chose(
    tmp_path, small_digits, settings_for, monkeypatch
):
    picks = {"adam": 0.004, "adadelta": 0.8}
    calls = []

    def fake_choose(model, x, y=None, *, batch_size=32, **kwargs):
        name = type(model.optimizer).__name__.lower()
        calls.append((name, batch_size, kwargs["num_steps"], kwargs["budget"]))
        return FakeRace(picks[name])

    def no_find(*args, **kwargs):
        raise AssertionError("part fair must not read the valley")

    monkeypatch.setattr(keras_lr, "choose_learning_rate", fake_choose, False)
    monkeypatch.setattr(keras_lr, "find_learning_rate", no_find, False)
    settings = settings_for(
        tmp_path, parts=["fair"], optimizers=["adam", "adadelta"]
    )
    runner.reproduce(small_digits, settings)
    # The budget: 4 runs of 2 epochs of the race's training part (96
    # samples less a held-out fifth, 19: 77, 2 batches of 32 an epoch).
    assert calls == [("adam", 32, 10, 16), ("adadelta", 32, 10, 16)]
    folder = settings.out / "digits_optimizers_range_test_lr"
    for name, rate in picks.items():
        record = json.loads((folder / f"range_tests/{name}.json").read_text())
        assert record["suggestion"] == rate
        assert record["spec"]["method"] == "race"
        assert record["race"]["learning_rate"] == rate
        assert (folder / f"range_tests/{name}.png").is_file()
        rows = read_history(folder / f"{name}_seed0" / "history.csv")
        assert float(rows[0]["lr"]) == pytest.approx(rate, rel=1e-6)
    table = (folder / "results.md").read_text()
    assert re.search(r"\| Adadelta \| 0\.8 \|", table)
    assert "the LR the race chose" in table
    assert "`keras_lr.choose_learning_rate` chose" in table
    assert "not the range test's valley reading" in table
    # Resuming reuses the races as well as the runs.
    runner.reproduce(small_digits, settings)
    assert len(calls) == 2


def test_fair_part_without_the_race_fails_before_writing(
    tmp_path, small_digits, settings_for, monkeypatch
):
    monkeypatch.setattr(keras_lr, "choose_learning_rate", None)
    settings = settings_for(tmp_path, parts=["lr", "fair"])
    with pytest.raises(UsageError, match="choose_learning_rate"):
        runner.reproduce(small_digits, settings)
    assert not settings.out.exists()


def test_unwritable_out_fails_before_training(
    tmp_path, small_digits, settings_for
):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    settings = settings_for(tmp_path, out=blocker / "runs")
    with pytest.raises(UsageError, match="`--out` must be a writable folder"):
        runner.reproduce(small_digits, settings)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
