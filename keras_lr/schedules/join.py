"""Schedules run one after the other, each on its own local step."""

import keras
from keras import ops

from keras_lr import _checks
from keras_lr.schedules import _base


@keras.saving.register_keras_serializable(package="keras_lr")
class JoinedSchedule(_base.LearningRateSchedule):
    """Runs `schedules[i]` from `boundaries[i - 1]` on, on its local step.

    Piece `i` covers `boundaries[i - 1] <= step < boundaries[i]` and sees
    `step - boundaries[i - 1]`, so each piece starts from its own step 0
    (optax's `join_schedules`). Warmup, then cosine, then a constant tail is
    three pieces and two boundaries.

    ```python
    def learning_rate(step):
        i = number of boundaries <= step
        start = boundaries[i - 1] if i > 0 else 0
        return schedules[i](step - start)
    ```

    Args:
        schedules: A list of `LearningRateSchedule`s (ours or Keras') or
            Python floats (constant pieces), one more than `boundaries`.
        boundaries: A list of Python ints > 0, strictly increasing: the
            global steps at which the next piece takes over.
        name: A string. Name scope of the operations.

    Returns:
        A scalar tensor of the dtype of the first piece's output.

    Raises:
        ValueError: if the lengths do not match or the boundaries are not
            positive and strictly increasing.
        TypeError: if a piece is neither a schedule nor a number.

    Example:

    ```python
    schedule = keras_lr.schedules.JoinedSchedule(
        [keras_lr.schedules.PolynomialDecay(0.0, 500, 0.1),
         keras_lr.schedules.CosineDecay(0.1, 4500), 0.0],
        boundaries=[500, 5000],
    )
    ```
    """

    def __init__(self, schedules, boundaries, name="JoinedSchedule"):
        super().__init__()
        if isinstance(schedules, (str, bytes, dict)) or not isinstance(
            schedules, (list, tuple)
        ):
            raise TypeError(
                "Argument `schedules` must be a list of schedules. Received: "
                f"schedules={schedules!r} (of type {type(schedules).__name__})"
            )
        schedules = [_base.deserialize(s) for s in schedules]
        for index, schedule in enumerate(schedules):
            _base.check_schedule(f"schedules[{index}]", schedule)
        if not isinstance(boundaries, (list, tuple)):
            raise TypeError(
                "Argument `boundaries` must be a list of integers. Received: "
                f"boundaries={boundaries!r} (of type "
                f"{type(boundaries).__name__})"
            )
        for boundary in boundaries:
            _checks.check_int("boundaries", boundary)
        if len(schedules) != len(boundaries) + 1:
            raise ValueError(
                "Argument `schedules` must have exactly one more element than "
                f"`boundaries`. Received: {len(schedules)} schedules, "
                f"boundaries={list(boundaries)!r}"
            )
        if boundaries and boundaries[0] <= 0:
            raise ValueError(
                "Argument `boundaries` must hold steps > 0. Received: "
                f"boundaries={list(boundaries)!r}"
            )
        _checks.check_strictly_increasing("boundaries", list(boundaries))
        self.schedules = list(schedules)
        self.boundaries = list(boundaries)
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name):
            step = ops.convert_to_tensor(step)
            value = _base.evaluate(self.schedules[0], step)
            dtype = value.dtype
            for boundary, schedule in zip(self.boundaries, self.schedules[1:]):
                local = ops.maximum(step - boundary, 0)
                piece = ops.cast(_base.evaluate(schedule, local), dtype)
                value = ops.where(step < boundary, value, piece)
            return value

    def get_config(self):
        return {
            "schedules": [_base.serialize(s) for s in self.schedules],
            "boundaries": list(self.boundaries),
            "name": self.name,
        }
