"""How part `fair` and `keras-lr find` choose a rate.

Part `fair` gives each optimizer the rate `keras_lr.choose_learning_rate`
chooses (`run_race`): a range test, then a race of candidates across the
bracket it gives, scored on a held-out fifth of the training data (the
reproduction's validation data is never seen), the finalists trained as
long as the reproduction's runs. `keras-lr find` runs the range test
alone (`run_range_test`) and reads its valley. Each runs on a fresh model
of the reproduction; its numbers, the chosen rate and its own warnings go
to a JSON file, its plot to a PNG next to it.
"""

import math
import warnings
from pathlib import Path

import keras

import keras_lr
from keras_lr_experiments import _files
from keras_lr_experiments import models
from keras_lr_experiments import optimizers
from keras_lr_experiments import plan
from keras_lr_experiments.errors import UsageError
from keras_lr_experiments.settings import RANGE_TEST
from keras_lr_experiments.settings import Settings

# The race of part `fair`: the held-out fifth it scores on, and its
# budget in runs (its finalists train as long as one run; successive
# halving with reduction 2 spends about four runs' steps in all).
RACE_VALIDATION_SPLIT = 0.2
RACE_BUDGET_RUNS = 4


def choose_learning_rate_function():
    """`keras_lr.choose_learning_rate`, or a `UsageError` if this build
    lacks it (part `fair` needs it)."""
    function = getattr(keras_lr, "choose_learning_rate", None)
    if function is None:
        raise UsageError(
            "Part `fair` needs the race (keras_lr.choose_learning_rate), "
            "which this build of keras_lr does not have; run --parts lr "
            "optimizers"
        )
    return function


def find_learning_rate_function():
    """`keras_lr.find_learning_rate`, or a `UsageError` if this build
    lacks it (part `fair` and `keras-lr find` need it)."""
    function = getattr(keras_lr, "find_learning_rate", None)
    if function is None:
        raise UsageError(
            "Part `fair` and `keras-lr find` need the LR range test "
            "(keras_lr.find_learning_rate), which this build of keras_lr "
            "does not have; run --parts lr optimizers"
        )
    return function


def range_test_spec(optimizer: str, data, settings: Settings) -> dict:
    """What identifies a range test's result; a saved one is reused only
    if its JSON holds exactly this."""
    return {
        "optimizer": optimizer,
        "dataset": data.summary(),
        "model": models.MODELS[data.kind],
        "batch_size": settings.batch_size,
        "seed": settings.seeds[0],
        "start_lr": settings.range_test_start_lr,
        "end_lr": settings.range_test_end_lr,
        "num_steps": settings.range_test_steps,
        "repeats": settings.range_test_repeats,
        "method": RANGE_TEST["method"],
    }


def run_range_test(
    optimizer: str, data, settings: Settings, folder: Path, basename: str
) -> dict:
    """Runs the range test for `optimizer` on a fresh model; writes
    `<basename>.json` (numbers and the picked rate) and `<basename>.png`
    (the curve) in `folder`; returns the JSON's content."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    find_learning_rate = find_learning_rate_function()
    spec = range_test_spec(optimizer, data, settings)
    model = _fresh_model(optimizer, data, spec["seed"])
    # The range test warns about curves it cannot trust; keep the words
    # with the result (and show them) rather than lose them in a log.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = find_learning_rate(
            model,
            data.x_train,
            data.y_train,
            batch_size=settings.batch_size,
            start_lr=spec["start_lr"],
            end_lr=spec["end_lr"],
            num_steps=spec["num_steps"],
            repeats=spec["repeats"],
            seed=spec["seed"],
            verbose=0,
        )
        try:
            picked = float(result.suggestion(method=spec["method"]))
        except ValueError as error:
            raise RuntimeError(
                f"The range test for {optimizer} gave no "
                f"{spec['method']!r} suggestion: {error}"
            ) from None
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    if not (math.isfinite(picked) and picked > 0):
        raise RuntimeError(
            f"The range test for {optimizer} suggested no usable rate "
            f"(got {picked!r}); see {folder / (basename + '.png')}"
        )
    record = {
        "spec": spec,
        "suggestion": picked,
        "warnings": messages,
        "range_test": _files.json_safe(result.to_dict()),
    }
    figure, axes = plt.subplots(figsize=(6, 4))
    result.plot(ax=axes)
    axes.set_title(f"{plan.LABELS[optimizer]}: range test picks {picked:.3g}")
    _files.save_figure(figure, folder / f"{basename}.png")
    plt.close(figure)
    _files.write_json(folder / f"{basename}.json", record)
    return record


def race_budget(data, settings: Settings) -> int:
    """The race's training steps: `RACE_BUDGET_RUNS` runs of
    `settings.epochs` epochs on the race's training part."""
    n = len(data.x_train)
    train = n - round(RACE_VALIDATION_SPLIT * n)
    per_epoch = max(1, train // settings.batch_size)
    return RACE_BUDGET_RUNS * settings.epochs * per_epoch


def race_spec(optimizer: str, data, settings: Settings) -> dict:
    """What identifies a race's result; a saved one is reused only if its
    JSON holds exactly this."""
    return {
        "optimizer": optimizer,
        "dataset": data.summary(),
        "model": models.MODELS[data.kind],
        "batch_size": settings.batch_size,
        "seed": settings.seeds[0],
        "start_lr": settings.range_test_start_lr,
        "end_lr": settings.range_test_end_lr,
        "num_steps": settings.range_test_steps,
        "validation_split": RACE_VALIDATION_SPLIT,
        "budget": race_budget(data, settings),
        "method": "race",
    }


def run_race(
    optimizer: str, data, settings: Settings, folder: Path, basename: str
) -> dict:
    """Chooses `optimizer`'s rate with `keras_lr.choose_learning_rate` on
    a fresh model; writes `<basename>.json` (the race, its range test and
    the chosen rate as `suggestion`) and `<basename>.png` (the race's
    plot) in `folder`; returns the JSON's content."""
    import matplotlib

    matplotlib.use("Agg")

    choose_learning_rate = choose_learning_rate_function()
    spec = race_spec(optimizer, data, settings)
    model = _fresh_model(optimizer, data, spec["seed"])
    # The race warns about a degenerate bracket, a winner that got worse
    # and a winner at the bracket's edge: keep the words with the result.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = choose_learning_rate(
            model,
            data.x_train,
            data.y_train,
            validation_split=spec["validation_split"],
            batch_size=settings.batch_size,
            budget=spec["budget"],
            start_lr=spec["start_lr"],
            end_lr=spec["end_lr"],
            num_steps=spec["num_steps"],
            seed=spec["seed"],
            verbose=0,
        )
    picked = float(result.learning_rate)
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    if not (math.isfinite(picked) and picked > 0):
        raise RuntimeError(
            f"The race for {optimizer} chose no usable rate (got "
            f"{picked!r}); see {folder / (basename + '.png')}"
        )
    record = {
        "spec": spec,
        "suggestion": picked,
        "warnings": messages,
        "race": _files.json_safe(result.to_dict()),
    }
    figure = result.plot()
    figure.suptitle(f"{plan.LABELS[optimizer]}: the race chooses {picked:.3g}")
    _files.save_figure(figure, folder / f"{basename}.png")
    _files.write_json(folder / f"{basename}.json", record)
    return record


def _fresh_model(optimizer: str, data, seed: int):
    """A new model seeded `seed`, compiled with `optimizer` at a constant
    rate: SGD's annealing is a schedule over the whole run, so the range
    test and the race sweep plain SGD and their pick becomes the
    schedule's first value."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = models.build_model(data.kind, data.input_shape, data.num_classes)
    models.compile_model(
        model,
        optimizers.make_optimizer(optimizer, 1e-3, schedule=False),
    )
    return model
