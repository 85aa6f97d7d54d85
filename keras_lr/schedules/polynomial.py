"""Polynomial decay."""

import keras
from keras import ops

from keras_lr import _checks
from keras_lr.schedules import _base


def polynomial_decay(
    step,
    initial_learning_rate,
    decay_steps,
    end_learning_rate=0.0001,
    power=1.0,
    cycle=False,
):
    """`(lr0 - end) * (1 - step / decay_steps) ** power + end`."""
    lr = _base.learning_rate_tensor(initial_learning_rate)
    dtype = lr.dtype
    end = _base.constant(end_learning_rate, dtype)
    step = _base.step_as(step, dtype)
    horizon = _base.constant(decay_steps, dtype)
    if cycle:
        # The first multiple of `decay_steps` that is >= step (1 at step 0).
        horizon = horizon * ops.maximum(ops.ceil(step / horizon), 1.0)
    else:
        step = ops.minimum(step, horizon)
    remaining = 1.0 - step / horizon
    return (lr - end) * ops.power(remaining, _base.constant(power, dtype)) + end


@keras.saving.register_keras_serializable(package="keras_lr")
class PolynomialDecay(_base.LearningRateSchedule):
    """A `LearningRateSchedule` that uses a polynomial decay schedule.

    A drop-in replacement for `keras.optimizers.schedules.PolynomialDecay`.
    With `power=1` it is linear decay.

    ```python
    def decayed_learning_rate(step):
        step = min(step, decay_steps)
        return ((initial_learning_rate - end_learning_rate) *
                (1 - step / decay_steps) ** power) + end_learning_rate
    ```

    With `cycle=True`, `decay_steps` is replaced by its first multiple that
    is not below `step`, so the rate jumps back up and decays again.

    Args:
        initial_learning_rate: A Python float. The rate at step 0.
        decay_steps: A Python number > 0. Steps to reach `end_learning_rate`.
        end_learning_rate: A Python float >= 0. The final rate.
        power: A Python float >= 0. The power of the polynomial.
        cycle: A bool. Whether to cycle beyond `decay_steps`.
        name: A string. Name scope of the operations.

    Returns:
        A scalar tensor of the dtype of `initial_learning_rate`.

    Raises:
        ValueError: if `decay_steps <= 0`, a rate or `power` is negative.

    Example:

    ```python
    schedule = keras_lr.schedules.PolynomialDecay(
        0.1, decay_steps=10_000, end_learning_rate=0.01, power=0.5
    )
    ```
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        end_learning_rate=0.0001,
        power=1.0,
        cycle=False,
        name="PolynomialDecay",
    ):
        super().__init__()
        _checks.check_non_negative(
            "initial_learning_rate", initial_learning_rate
        )
        _checks.check_positive("decay_steps", decay_steps)
        _checks.check_non_negative("end_learning_rate", end_learning_rate)
        _checks.check_non_negative("power", power)
        _checks.check_bool("cycle", cycle)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name):
            return polynomial_decay(
                step,
                self.initial_learning_rate,
                self.decay_steps,
                self.end_learning_rate,
                self.power,
                self.cycle,
            )

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }
