"""Gaussian decay."""

import keras
from keras import ops

from keras_lr import _checks
from keras_lr.schedules import _base


def gaussian_decay(step, initial_learning_rate, decay_steps, alpha=0.0):
    """`lr0 * (alpha + (1 - alpha) * exp(-0.5 * (step / decay_steps) ** 2))`."""
    lr = _base.learning_rate_tensor(initial_learning_rate)
    dtype = lr.dtype
    x = _base.step_as(step, dtype) / _base.constant(decay_steps, dtype)
    alpha = _base.constant(alpha, dtype)
    # A line from `alpha` to 1 weighted by the bell: exactly `lr` at step 0.
    return lr * _base.lerp(alpha, 1.0, ops.exp(-0.5 * ops.square(x)))


@keras.saving.register_keras_serializable(package="keras_lr")
class GaussianDecay(_base.LearningRateSchedule):
    """A `LearningRateSchedule` that follows a Gaussian (bell) curve.

    The rate stays near `initial_learning_rate` early, falls fastest around
    `decay_steps` (the curve's standard deviation, in steps) and flattens
    towards `alpha * initial_learning_rate`.

    ```python
    def decayed_learning_rate(step):
        bell = exp(-0.5 * (step / decay_steps) ** 2)
        return initial_learning_rate * (alpha + (1 - alpha) * bell)
    ```

    Args:
        initial_learning_rate: A Python float, a scalar tensor or a
            `keras.Variable` (read at every call; an int counts as a
            float). The rate at step 0.
        decay_steps: A Python number > 0. Standard deviation of the bell,
            in steps.
        alpha: A Python float in [0, 1]. Final rate as a fraction of
            `initial_learning_rate`.
        name: A string. Name scope of the operations.

    Returns:
        A scalar tensor of the dtype of `initial_learning_rate`.

    Raises:
        ValueError: if `decay_steps <= 0` or `alpha` is outside [0, 1].

    Example:

    ```python
    schedule = keras_lr.schedules.GaussianDecay(0.1, decay_steps=2000)
    ```
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        alpha=0.0,
        name="GaussianDecay",
    ):
        super().__init__()
        _checks.check_non_negative_rate(
            "initial_learning_rate", initial_learning_rate
        )
        _checks.check_positive("decay_steps", decay_steps)
        _checks.check_closed_interval("alpha", alpha, 0.0, 1.0)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name):
            return gaussian_decay(
                step, self.initial_learning_rate, self.decay_steps, self.alpha
            )

    def get_config(self):
        return {
            "initial_learning_rate": _base.config_value(
                self.initial_learning_rate
            ),
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
        }
