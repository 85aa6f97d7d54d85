"""Training one run: its three files, the rate per epoch, seeding."""

import csv
import json

import numpy as np
import pytest

from keras_lr_experiments import plan
from keras_lr_experiments import training


def read_history(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def spec_of(optimizer, rate, seed=0, part="optimizers"):
    return plan.RunSpec(part, "exp", f"{optimizer}", optimizer, rate, seed)


def test_one_run_writes_config_history_and_summary(
    tmp_path, small_digits, settings_for
):
    settings = settings_for(tmp_path, epochs=5)
    spec = spec_of("sgd_annealing", 0.05)
    summary = training.train_run(spec, small_digits, settings, tmp_path / "r")
    rows = read_history(tmp_path / "r" / "history.csv")
    assert list(rows[0]) == list(training.HISTORY_COLUMNS)
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


def test_constant_rate_run_has_no_schedule(
    tmp_path, small_digits, settings_for
):
    settings = settings_for(tmp_path, epochs=2)
    training.train_run(
        spec_of("adam", 0.004), small_digits, settings, tmp_path / "r"
    )
    rows = read_history(tmp_path / "r" / "history.csv")
    np.testing.assert_allclose([float(r["lr"]) for r in rows], [0.004] * 2)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert "schedule" not in config
    assert config["optimizer"]["config"]["learning_rate"] == pytest.approx(
        0.004
    )


def test_same_seed_same_history_other_seed_differs(
    tmp_path, small_digits, settings_for
):
    settings = settings_for(tmp_path)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        spec = spec_of("adam", 0.001, seed=seed)
        training.train_run(spec, small_digits, settings, tmp_path / name)
    a, b, c = (read_history(tmp_path / n / "history.csv") for n in "abc")
    assert a == b
    assert a != c


def test_is_complete_needs_all_three_files_and_the_same_spec(
    tmp_path, small_digits, settings_for
):
    settings = settings_for(tmp_path, epochs=1)
    spec = spec_of("adam", 0.001)
    run_dir = tmp_path / "r"
    training.train_run(spec, small_digits, settings, run_dir)
    spec_dict = training.run_spec_dict(spec, small_digits, settings)
    assert training.is_complete(run_dir, spec_dict)
    other = training.run_spec_dict(
        spec_of("adam", 0.002), small_digits, settings
    )
    assert not training.is_complete(run_dir, other)
    (run_dir / "history.csv").unlink()
    assert not training.is_complete(run_dir, spec_dict)
