"""The article's optimizers, by name, with Keras's default settings.

`sgd_annealing` is the article's "LR annealing": plain SGD (Keras
defaults: no momentum) whose rate is divided by 10 after 40% and again
after 70% of the epochs, i.e. the article's example "0.1 until epoch 400,
0.01 until 700, then 0.001" of 1,000 epochs, scaled to the run length
and starting from the run's learning rate. The drops fall on epoch
boundaries, so each epoch trains at a single rate.
"""

import math

import keras

from keras_lr.schedules import PiecewiseConstantDecay
from keras_lr_experiments.errors import UsageError
from keras_lr_experiments.names import OPTIMIZERS

ANNEALING_FRACTIONS = (0.4, 0.7)
ANNEALING_FACTORS = (1.0, 0.1, 0.01)

CLASSES = {
    "sgd_annealing": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adam": keras.optimizers.Adam,
    "adagrad": keras.optimizers.Adagrad,
    "adadelta": keras.optimizers.Adadelta,
}


def check_optimizer(name: str, argument: str = "--optimizer") -> None:
    if name not in OPTIMIZERS:
        raise UsageError(
            f"Argument `{argument}` must be one of {', '.join(OPTIMIZERS)}. "
            f"Received: {argument}={name!r}"
        )


def annealing_boundaries(epochs: int, steps_per_epoch: int) -> list[int]:
    """The steps after which the annealed rate drops (Keras semantics:
    the new value applies from step `boundary + 1`)."""
    first = max(1, round(ANNEALING_FRACTIONS[0] * epochs))
    second = max(first + 1, round(ANNEALING_FRACTIONS[1] * epochs))
    return [first * steps_per_epoch - 1, second * steps_per_epoch - 1]


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    return math.ceil(num_examples / batch_size)


def make_learning_rate(
    name: str,
    learning_rate: float,
    epochs: int = 1,
    steps_per_epoch: int = 1,
    schedule: bool = True,
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """What the optimizer `name` trains at: `learning_rate`, or for
    `sgd_annealing` its step-decay schedule starting there.

    Args: as `make_optimizer`.
    """
    check_optimizer(name)
    if name == "sgd_annealing" and schedule:
        return PiecewiseConstantDecay(
            boundaries=annealing_boundaries(epochs, steps_per_epoch),
            values=[learning_rate * f for f in ANNEALING_FACTORS],
        )
    return learning_rate


def make_optimizer(
    name: str,
    learning_rate: float,
    epochs: int = 1,
    steps_per_epoch: int = 1,
    schedule: bool = True,
) -> keras.optimizers.Optimizer:
    """A fresh optimizer; `sgd_annealing` gets its step-decay schedule.

    Args:
        name: One of `OPTIMIZERS`.
        learning_rate: A Python float, the (initial) rate.
        epochs, steps_per_epoch: Ints, the run length the annealing is
            scaled to.
        schedule: A bool. `False` gives plain SGD at a constant rate for
            `sgd_annealing` (what the range test needs).
    """
    rate = make_learning_rate(
        name, learning_rate, epochs, steps_per_epoch, schedule
    )
    return CLASSES[name](learning_rate=rate)
