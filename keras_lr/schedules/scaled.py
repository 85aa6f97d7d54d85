"""A schedule multiplied by a factor that callbacks may change."""

import keras
from keras import ops

from keras_lr import _backend
from keras_lr import _checks
from keras_lr.schedules import _base


@keras.saving.register_keras_serializable(package="keras_lr")
class ScaledSchedule(_base.LearningRateSchedule):
    """Multiplies any schedule by a factor held in a variable.

    A model saved while keras_lr's rate controller held a factor on its
    schedule (after a plateau cut, say: warmup, then cosine, then a cut
    gives `scale * cosine(step)`) loads back with this around the
    schedule, so it trains on at the same rate without keras_lr's
    callbacks. The factor is saved in the config.

    ```python
    def learning_rate(step):
        return scale * schedule(step)
    ```

    Args:
        schedule: A `LearningRateSchedule` (ours or Keras') or a Python
            float.
        scale: A Python float >= 0. The current factor.
        name: A string. Name scope of the operations.

    Returns:
        A scalar tensor of the dtype of the wrapped schedule's output.

    Raises:
        ValueError: for a negative `scale`.
        TypeError: if `schedule` is neither a schedule nor a number.

    Example:

    ```python
    schedule = keras_lr.schedules.ScaledSchedule(
        keras_lr.schedules.CosineDecay(0.1, 10_000), scale=0.5
    )
    ```
    """

    def __init__(self, schedule, scale=1.0, name="ScaledSchedule"):
        super().__init__()
        schedule = _base.deserialize(schedule)
        _base.check_schedule("schedule", schedule)
        _checks.check_non_negative("scale", scale)
        self.schedule = schedule
        self.name = name
        self._scale = keras.Variable(
            float(scale), dtype="float32", trainable=False, name="lr_scale"
        )

    @property
    def scale(self) -> float:
        """The current factor."""
        return float(_backend.to_numpy(self._scale))

    @scale.setter
    def scale(self, value: float) -> None:
        _checks.check_non_negative("scale", value)
        self._scale.assign(float(value))

    def __call__(self, step):
        with keras.name_scope(self.name):
            value = _base.evaluate(self.schedule, step)
            return value * ops.cast(self._scale, value.dtype)

    def get_config(self):
        return {
            "schedule": _base.serialize(self.schedule),
            "scale": self.scale,
            "name": self.name,
        }
