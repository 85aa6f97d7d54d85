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
        # XLA divides by multiplying with a reciprocal, which can put
        # `step / horizon` just above a whole number; one step back fixes it.
        multiple = ops.maximum(ops.ceil(step / horizon), 1.0)
        multiple = ops.where(
            (multiple > 1.0) & ((multiple - 1.0) * horizon >= step),
            multiple - 1.0,
            multiple,
        )
        horizon = horizon * multiple
    else:
        step = ops.minimum(step, horizon)
    # Exactly 1 at step 0 and 0 from the horizon on: XLA divides with a
    # rounded reciprocal and fuses `1 - step / horizon` into a multiply-add
    # that gives -1.5e-8 at the horizon (NaN for a fractional `power`).
    remaining = ops.where(step >= horizon, 0.0, 1.0 - step / horizon)
    weight = ops.power(remaining, _base.constant(power, dtype))
    # Exactly `lr` at step 0 and `end` at `decay_steps`, unlike
    # `(lr - end) * weight + end`, which can miss `lr` by an ulp.
    return _base.lerp(end, lr, weight)


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
        initial_learning_rate: A Python float, a scalar tensor or a
            `keras.Variable` (read at every call; an int counts as a
            float). The rate at step 0.
        decay_steps: A Python number > 0. Steps to reach `end_learning_rate`.
        end_learning_rate: The same kinds, >= 0. The final rate.
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
        _checks.check_non_negative_rate(
            "initial_learning_rate", initial_learning_rate
        )
        _checks.check_positive("decay_steps", decay_steps)
        _checks.check_non_negative_rate("end_learning_rate", end_learning_rate)
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
            "initial_learning_rate": _base.config_value(
                self.initial_learning_rate
            ),
            "decay_steps": self.decay_steps,
            "end_learning_rate": _base.config_value(self.end_learning_rate),
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }
