"""Every private part of Keras keras_lr relies on still exists, and only
`keras_lr/_keras_internals.py` uses them."""

import pathlib
import re

import keras
import pytest

from keras_lr import _keras_internals as internals

PACKAGE = pathlib.Path(internals.__file__).parent


def _instances():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.make_train_function()
    return {
        "Optimizer": model.optimizer,
        "Model": model,
        "Metric": keras.metrics.AUC(),
        "ScheduleFreeAdamW": _schedule_free(model),
        "SGD": _built(keras.optimizers.SGD(momentum=0.9), model),
        "RMSprop": _built(keras.optimizers.RMSprop(momentum=0.9), model),
        "Ftrl": _built(keras.optimizers.Ftrl(), model),
    }


def _built(optimizer, model):
    optimizer.build(model.trainable_variables)
    return optimizer


def _schedule_free(model):
    optimizer = keras.optimizers.ScheduleFreeAdamW()
    optimizer.build(model.trainable_variables)
    return optimizer


@pytest.mark.parametrize(
    "owner, attribute", internals.INTERNALS, ids=lambda v: str(v)
)
def test_each_internal_still_exists(owner, attribute):
    instance = _instances()[owner]
    assert isinstance(instance, internals.owner_classes()[owner])
    assert hasattr(instance, attribute), (
        f"Keras {keras.__version__} no longer has {owner}.{attribute}, "
        "which keras_lr/_keras_internals.py relies on."
    )


def test_the_functions_reach_them():
    instances = _instances()
    optimizer, model = instances["Optimizer"], instances["Model"]
    assert internals.rate_slot(optimizer) is optimizer.learning_rate
    assert internals.iterations_variable(optimizer) is optimizer.iterations
    before = internals.train_function(model)
    internals.retrace(model)
    assert internals.train_function(model) is not before
    internals.set_initial_epoch(model, 3)
    assert model._initial_epoch == 3
    assert internals.metric_direction(instances["Metric"]) == "up"
    assert internals.metric_direction(keras.metrics.MeanSquaredError()) == (
        "down"
    )


def test_no_other_module_uses_them():
    names = {attribute for _, attribute in internals.INTERNALS}
    private = [n for n in names if n.startswith("_")]
    pattern = re.compile(
        r"\.(" + "|".join(map(re.escape, private)) + r")\b"
        r"|\bmake_train_function\b|\.train_function\s*="
    )
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_keras_internals.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}")
    assert offenders == []
    assert "keras.src" not in "".join(
        p.read_text() for p in PACKAGE.rglob("*.py")
    )


def test_rate_slot_readers():
    instances = _instances()
    assert len(internals.sgd_velocities(instances["SGD"])) == 2
    assert internals.sgd_velocities(instances["Optimizer"]) == []
    assert len(internals.rmsprop_momentums(instances["RMSprop"])) == 2
    accumulators, linears = internals.ftrl_slots(instances["Ftrl"])
    assert [v.path.rsplit("_", 1)[-1] for v in accumulators + linears] == (
        ["accumulator"] * 2 + ["linear"] * 2
    )


def test_schedule_free_slot_and_layers():
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.Sequential([keras.layers.Dense(3)]),
            keras.layers.Dense(1),
        ]
    )
    optimizer = keras.optimizers.ScheduleFreeAdamW()
    kernel = model.trainable_variables[0]
    assert internals.schedule_free_slot(optimizer, kernel) is None
    optimizer.build(model.trainable_variables)
    slot = internals.schedule_free_slot(optimizer, kernel)
    assert slot.path.endswith("_momentum")
    assert slot.shape == kernel.shape
    other = keras.Variable(1.0)
    assert internals.schedule_free_slot(optimizer, other) is None
    layers = internals.all_layers(model)
    assert model not in layers
    assert sum(isinstance(x, keras.layers.Dense) for x in layers) == 2
