"""Inverse time decay, the seeds' "time-based decay"."""

import keras
from keras import ops

from keras_lr import _checks
from keras_lr.schedules import _base


def inverse_time_decay(
    step, initial_learning_rate, decay_steps, decay_rate, staircase=False
):
    """`initial_learning_rate / (1 + decay_rate * step / decay_steps)`."""
    lr = _base.learning_rate_tensor(initial_learning_rate)
    dtype = lr.dtype
    p = _base.step_as(step, dtype) / _base.constant(decay_steps, dtype)
    if staircase:
        p = ops.floor(p)
    return lr / (1.0 + _base.constant(decay_rate, dtype) * p)


@keras.saving.register_keras_serializable(package="keras_lr")
class InverseTimeDecay(_base.LearningRateSchedule):
    """A `LearningRateSchedule` that uses an inverse time decay schedule.

    A drop-in replacement for `keras.optimizers.schedules.InverseTimeDecay`.
    This is the "time-based decay" of the Keras 2 era
    (`lr = lr0 / (1 + decay * iterations)`): use `decay_steps=1` and
    `decay_rate=decay`. Also exported as `keras_lr.schedules.TimeBasedDecay`.

    ```python
    def decayed_learning_rate(step):
        p = step / decay_steps          # floor(step / decay_steps) if staircase
        return initial_learning_rate / (1 + decay_rate * p)
    ```

    Args:
        initial_learning_rate: A Python float, a scalar tensor or a
            `keras.Variable` (read at every call; an int counts as a
            float). The rate at step 0.
        decay_steps: A Python number > 0. How often to apply the decay.
        decay_rate: A Python float >= 0. The decay rate.
        staircase: A bool. Whether to apply the decay in a discrete fashion.
        name: A string. Name scope of the operations.

    Returns:
        A scalar tensor of the dtype of `initial_learning_rate`.

    Raises:
        ValueError: if `decay_steps <= 0` or a rate is negative.

    Example:

    ```python
    schedule = keras_lr.schedules.InverseTimeDecay(
        0.1, decay_steps=1, decay_rate=1e-3
    )
    ```
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        decay_rate,
        staircase=False,
        name="InverseTimeDecay",
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
            return inverse_time_decay(
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


TimeBasedDecay = InverseTimeDecay
"""`InverseTimeDecay` under the seed article's name, "time-based decay"."""
