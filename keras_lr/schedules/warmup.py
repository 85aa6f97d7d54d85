"""Linear warmup in front of any schedule."""

import keras
from keras import ops

from keras_lr import _checks
from keras_lr.schedules import _base


@keras.saving.register_keras_serializable(package="keras_lr")
class LinearWarmup(_base.LearningRateSchedule):
    """Ramps the rate linearly up to where another schedule begins.

    For `warmup_steps` steps the rate rises from `initial_learning_rate` to
    `schedule(0)`; from then on it is `schedule(step - warmup_steps)`, so the
    wrapped schedule sees its own local step and runs its full course after
    the warmup (like Keras' `CosineDecay`, unlike optax's counting).

    ```python
    def learning_rate(step):
        if step < warmup_steps:
            target = schedule(0)
            return initial_learning_rate + (
                target - initial_learning_rate) * step / warmup_steps
        return schedule(step - warmup_steps)
    ```

    Args:
        schedule: A `LearningRateSchedule` (ours or Keras') or a Python
            float (a constant rate).
        warmup_steps: A Python int > 0. Length of the ramp.
        initial_learning_rate: A Python float, a scalar tensor or a
            `keras.Variable`, >= 0 (read at every call). The rate at step
            0.
        name: A string. Name scope of the operations.

    Returns:
        A scalar tensor of the dtype of the wrapped schedule's output.

    Raises:
        ValueError: for `warmup_steps <= 0` or a negative rate.
        TypeError: if `schedule` is neither a schedule nor a number.

    Example:

    ```python
    schedule = keras_lr.schedules.LinearWarmup(
        keras.optimizers.schedules.CosineDecay(0.1, decay_steps=9000),
        warmup_steps=1000,
    )
    ```

    Reference:
        Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in
        1 Hour", 2017.
    """

    def __init__(
        self,
        schedule,
        warmup_steps,
        initial_learning_rate=0.0,
        name="LinearWarmup",
    ):
        super().__init__()
        schedule = _base.deserialize(schedule)
        _base.check_schedule("schedule", schedule)
        _checks.check_positive_int("warmup_steps", warmup_steps)
        _checks.check_non_negative_rate(
            "initial_learning_rate", initial_learning_rate
        )
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.initial_learning_rate = initial_learning_rate
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name):
            step = ops.convert_to_tensor(step)
            target = _base.evaluate(self.schedule, ops.zeros_like(step))
            dtype = target.dtype
            local = ops.maximum(step - self.warmup_steps, 0)
            after = ops.cast(_base.evaluate(self.schedule, local), dtype)
            start = _base.constant(self.initial_learning_rate, dtype)
            fraction = _base.step_as(step, dtype) / float(self.warmup_steps)
            ramp = _base.lerp(start, target, fraction)
            return ops.where(step < self.warmup_steps, ramp, after)

    def get_config(self):
        return {
            "schedule": _base.serialize(self.schedule),
            "warmup_steps": self.warmup_steps,
            "initial_learning_rate": _base.config_value(
                self.initial_learning_rate
            ),
            "name": self.name,
        }
