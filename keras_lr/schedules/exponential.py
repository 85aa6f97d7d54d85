"""Exponential decay."""

import keras
from keras import ops

from keras_lr import _checks
from keras_lr.schedules import _base


def exponential_decay(
    step, initial_learning_rate, decay_steps, decay_rate, staircase=False
):
    """`initial_learning_rate * decay_rate ** (step / decay_steps)`."""
    lr = _base.learning_rate_tensor(initial_learning_rate)
    dtype = lr.dtype
    p = _base.step_as(step, dtype) / _base.constant(decay_steps, dtype)
    if staircase:
        p = ops.floor(p)
    return lr * ops.power(_base.constant(decay_rate, dtype), p)


@keras.saving.register_keras_serializable(package="keras_lr")
class ExponentialDecay(_base.LearningRateSchedule):
    """A `LearningRateSchedule` that decays the rate exponentially.

    A drop-in replacement for `keras.optimizers.schedules.ExponentialDecay`:
    same arguments, same defaults, same value at every step. With
    `staircase=True` it is the classic "step decay" (multiply the rate by
    `decay_rate` every `decay_steps` steps).

    ```python
    def decayed_learning_rate(step):
        p = step / decay_steps          # floor(step / decay_steps) if staircase
        return initial_learning_rate * decay_rate ** p
    ```

    Args:
        initial_learning_rate: A Python float, a scalar tensor or a
            `keras.Variable` (read at every call). The rate at step 0. Its
            type sets the output dtype (`numpy.float64` or a `float64`
            tensor gives `float64`; an int, like a float, `float32`).
        decay_steps: A Python number > 0. Steps per factor of `decay_rate`.
        decay_rate: A Python float >= 0. The decay factor.
        staircase: A bool. If `True`, decay at discrete intervals.
        name: A string. Name scope of the operations.

    Returns:
        A scalar tensor of the dtype of `initial_learning_rate`.

    Raises:
        ValueError: if `decay_steps <= 0` or a rate is negative.

    Example:

    ```python
    schedule = keras_lr.schedules.ExponentialDecay(
        0.1, decay_steps=1000, decay_rate=0.5, staircase=True
    )
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    ```
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        decay_rate,
        staircase=False,
        name="ExponentialDecay",
    ):
        super().__init__()
        _checks.check_non_negative_rate(
            "initial_learning_rate", initial_learning_rate
        )
        _checks.check_positive("decay_steps", decay_steps)
        _checks.check_non_negative("decay_rate", decay_rate)
        _checks.check_bool("staircase", staircase)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name):
            return exponential_decay(
                step,
                self.initial_learning_rate,
                self.decay_steps,
                self.decay_rate,
                self.staircase,
            )

    def get_config(self):
        return {
            "initial_learning_rate": _base.config_value(
                self.initial_learning_rate
            ),
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }
