"""Pieces shared by the schedule classes: dtype handling and nesting."""

import keras
from keras import ops

from keras_lr import _checks

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


def learning_rate_tensor(initial_learning_rate):
    """Converts the base rate to a tensor; its dtype is the schedule's dtype.

    A Python float becomes `float32` (Keras' default); a `numpy.float64`
    stays `float64`, as with the Keras schedules.
    """
    return ops.convert_to_tensor(initial_learning_rate)


def constant(value, dtype):
    """`value` as a tensor of `dtype`, rounded once.

    `ops.cast` of a Python float rounds it to float32 first, which would
    spoil a float64 schedule; tensors are cast as usual.
    """
    if ops.is_tensor(value):
        return ops.cast(value, dtype)
    return ops.convert_to_tensor(value, dtype=dtype)


def step_as(step, dtype):
    """The optimizer step (any integer or float tensor) as `dtype`."""
    return ops.cast(step, dtype)


def check_schedule(name: str, value) -> None:
    """A nested schedule is any `LearningRateSchedule` or a Python number."""
    if isinstance(value, LearningRateSchedule):
        return
    if _checks.is_real(value):
        _checks.check_non_negative(name, value)
        return
    raise TypeError(
        f"Argument `{name}` must be a `keras.optimizers.schedules."
        f"LearningRateSchedule` or a Python number. Received: {name}="
        f"{value!r} (of type {type(value).__name__})"
    )


def evaluate(schedule, step):
    """Value of a nested schedule (or constant) at `step`."""
    if isinstance(schedule, LearningRateSchedule):
        return ops.convert_to_tensor(schedule(step))
    return ops.convert_to_tensor(schedule)


def serialize(schedule):
    if isinstance(schedule, LearningRateSchedule):
        return keras.saving.serialize_keras_object(schedule)
    return schedule


def deserialize(config):
    if isinstance(config, dict):
        return keras.saving.deserialize_keras_object(config)
    return config
