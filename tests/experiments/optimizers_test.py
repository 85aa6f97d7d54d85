"""The article's optimizers and SGD's step annealing."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lr_experiments import optimizers
from keras_lr_experiments.errors import UsageError


def annealed_reference(step, rate, epochs, steps_per_epoch):
    """The rate of global step `step` (0-based), from the epoch it is in:
    divided by 10 from epoch round(0.4 E) and by 100 from round(0.7 E)."""
    epoch = step // steps_per_epoch
    first = max(1, round(0.4 * epochs))
    second = max(first + 1, round(0.7 * epochs))
    if epoch < first:
        return rate
    if epoch < second:
        return rate / 10
    return rate / 100


@pytest.mark.parametrize(
    "epochs, per_epoch", [(20, 43), (10, 7), (5, 1), (2, 3), (1, 4)]
)
def test_sgd_annealing_matches_reference_at_every_step(epochs, per_epoch):
    optimizer = optimizers.make_optimizer(
        "sgd_annealing", 0.1, epochs=epochs, steps_per_epoch=per_epoch
    )
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == 0.0
    schedule = optimizers.make_learning_rate(
        "sgd_annealing", 0.1, epochs=epochs, steps_per_epoch=per_epoch
    )
    steps = list(range(epochs * per_epoch + 2)) + [10**6]
    expected = [annealed_reference(s, 0.1, epochs, per_epoch) for s in steps]
    got = [float(schedule(tf.constant(s, tf.int64))) for s in steps]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # The optimizer trains at that schedule: first and last step of each
    # epoch, and far past the end.
    starts = [e * per_epoch for e in range(epochs)]
    sampled = starts + [s + per_epoch - 1 for s in starts] + [10**6]
    trained_at = []
    for step in sampled:
        optimizer.iterations.assign(step)
        trained_at.append(float(optimizer.learning_rate))
    np.testing.assert_allclose(
        trained_at,
        [annealed_reference(s, 0.1, epochs, per_epoch) for s in sampled],
        rtol=1e-6,
    )


def test_twenty_epochs_drop_after_epochs_8_and_14():
    assert optimizers.annealing_boundaries(20, 43) == [8 * 43 - 1, 14 * 43 - 1]


@pytest.mark.parametrize(
    "name, cls, defaults",
    [
        ("rmsprop", keras.optimizers.RMSprop, {"rho": 0.9, "momentum": 0.0}),
        ("adam", keras.optimizers.Adam, {"beta_1": 0.9, "beta_2": 0.999}),
        (
            "adagrad",
            keras.optimizers.Adagrad,
            {"initial_accumulator_value": 0.1},
        ),
        ("adadelta", keras.optimizers.Adadelta, {"rho": 0.95}),
        ("sgd_annealing", keras.optimizers.SGD, {"momentum": 0.0}),
    ],
)
def test_keras_defaults_at_the_given_rate(name, cls, defaults):
    optimizer = optimizers.make_optimizer(name, 0.001, schedule=False)
    assert type(optimizer) is cls
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.001)
    config = optimizer.get_config()
    for key, value in defaults.items():
        assert config[key] == pytest.approx(value)


def test_unknown_optimizer_is_a_usage_error():
    with pytest.raises(UsageError, match="--optimizer.*Received.*'lion'"):
        optimizers.make_optimizer("lion", 0.001)
