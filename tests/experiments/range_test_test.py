"""The range test of part `fair` and `keras-lr find`, on a fake finder."""

import json
import warnings

import pytest

import keras_lr
from keras_lr_experiments import range_test
from keras_lr_experiments.errors import UsageError
from tests.experiments.fakes import FakeRace
from tests.experiments.fakes import FakeResult


def test_writes_numbers_curve_and_the_finders_warnings(
    tmp_path, small_digits, settings_for, monkeypatch
):
    seen = {}

    def fake_find(model, x, y=None, **kwargs):
        seen.update(kwargs, optimizer=type(model.optimizer).__name__)
        warnings.warn("the loss never diverged", UserWarning, stacklevel=1)
        return FakeResult(0.03)

    monkeypatch.setattr(keras_lr, "find_learning_rate", fake_find, False)
    settings = settings_for(tmp_path, batch_size=16, seeds=[4])
    record = range_test.run_range_test(
        "sgd_annealing", small_digits, settings, tmp_path, "rt"
    )
    # SGD's annealing is swept as plain SGD.
    assert seen["optimizer"] == "SGD"
    assert seen["batch_size"] == 16 and seen["seed"] == 4
    assert seen["num_steps"] == 10 and seen["repeats"] == 3
    assert record["suggestion"] == 0.03
    assert record["warnings"] == ["the loss never diverged"]
    assert record["spec"] == range_test.range_test_spec(
        "sgd_annealing", small_digits, settings
    )
    assert json.loads((tmp_path / "rt.json").read_text()) == record
    assert (tmp_path / "rt.png").stat().st_size > 5_000


def test_an_unusable_pick_is_an_error(
    tmp_path, small_digits, settings_for, monkeypatch
):
    monkeypatch.setattr(
        keras_lr,
        "find_learning_rate",
        lambda *args, **kwargs: FakeResult(float("nan")),
        False,
    )
    settings = settings_for(tmp_path)
    with pytest.raises(RuntimeError, match="adam suggested no usable rate"):
        range_test.run_range_test(
            "adam", small_digits, settings, tmp_path, "rt"
        )
    assert not (tmp_path / "rt.json").exists()


def test_a_build_without_the_range_test_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(keras_lr, "find_learning_rate", None)
    with pytest.raises(UsageError, match="--parts lr optimizers"):
        range_test.find_learning_rate_function()


def test_the_race_writes_its_result_plot_and_warnings(
    tmp_path, small_digits, settings_for, monkeypatch
):
    seen = {}

    def fake_choose(model, x, y=None, **kwargs):
        seen.update(kwargs, optimizer=type(model.optimizer).__name__, n=len(x))
        warnings.warn("the winner got worse", UserWarning, stacklevel=1)
        return FakeRace(0.02)

    monkeypatch.setattr(keras_lr, "choose_learning_rate", fake_choose, False)
    settings = settings_for(tmp_path, batch_size=16, seeds=[4], epochs=3)
    record = range_test.run_race(
        "sgd_annealing", small_digits, settings, tmp_path, "race"
    )
    # The race sees the training data only, holds a fifth of it out, and
    # its finalists train as long as a run: 4 runs of 3 epochs of 77 // 16.
    assert seen["optimizer"] == "SGD" and seen["n"] == 96
    assert seen["validation_split"] == 0.2 and "validation_data" not in seen
    assert seen["budget"] == 4 * 3 * (77 // 16)
    assert seen["batch_size"] == 16 and seen["seed"] == 4
    assert seen["num_steps"] == 10
    assert record["suggestion"] == 0.02
    assert record["warnings"] == ["the winner got worse"]
    assert record["spec"] == range_test.race_spec(
        "sgd_annealing", small_digits, settings
    )
    assert record["spec"]["method"] == "race"
    assert json.loads((tmp_path / "race.json").read_text()) == record
    assert (tmp_path / "race.png").stat().st_size > 5_000


def test_a_build_without_the_race_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(keras_lr, "choose_learning_rate", None)
    with pytest.raises(UsageError, match="choose_learning_rate"):
        range_test.choose_learning_rate_function()
