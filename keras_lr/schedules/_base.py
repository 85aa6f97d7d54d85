"""Pieces shared by the schedule classes: dtype handling and nesting."""

import numbers

import keras
from keras import ops

from keras_lr import _checks

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


def learning_rate_tensor(initial_learning_rate):
    """Converts the base rate to a tensor; its dtype is the schedule's dtype.

    A Python float becomes `float32` (Keras' default float type); so does a
    Python or NumPy integer, whose value is a rate and not a count (Keras'
    own schedules would compute in `int32` and truncate). A `numpy.float64`
    or a `float64` tensor stays `float64`, as with the Keras schedules. A
    variable is read here, at call time, so assigning it later changes the
    schedule's values.
    """
    if isinstance(initial_learning_rate, numbers.Integral):
        return ops.convert_to_tensor(
            float(initial_learning_rate), dtype=keras.config.floatx()
        )
    tensor = ops.convert_to_tensor(initial_learning_rate)
    dtype = keras.backend.standardize_dtype(tensor.dtype)
    if not keras.backend.is_float_dtype(dtype):
        dtype = keras.config.floatx()
    # `convert_to_tensor` hands a variable back as it is; the cast reads it.
    return ops.cast(tensor, dtype)


def constant(value, dtype):
    """`value` as a tensor of `dtype`, rounded once.

    `ops.cast` of a Python float rounds it to float32 first, which would
    spoil a float64 schedule, so numbers go through a Python float (exact
    for an int or a `numpy.float64`); tensors and variables are cast.
    """
    if _checks.is_real(value):
        return ops.convert_to_tensor(float(value), dtype=dtype)
    return ops.cast(ops.convert_to_tensor(value), dtype)


def lerp(start, end, weight):
    """`start` at `weight == 0`, `end` at `weight == 1`, a line between.

    Written `start * (1 - weight) + end * weight`, which is exact at both
    ends; `start + (end - start) * weight` can miss `end` by a few ulps
    (enough to end a one-cycle at 4.0233e-7 instead of 4e-7).
    """
    return start * (1.0 - weight) + end * weight


def step_as(step, dtype):
    """The optimizer step (any integer or float tensor) as `dtype`."""
    return ops.cast(step, dtype)


def config_value(value):
    """A rate argument as `get_config` returns it: JSON-native.

    Numbers are returned as given. A tensor or variable becomes the Python
    float of its current value, as Keras' optimizers serialize a tensor or
    variable learning rate (so a reloaded schedule holds a constant).
    """
    if _checks.is_tensor_like(value):
        return float(ops.convert_to_numpy(value))
    return value


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
    """Value of a nested schedule (or constant) at `step`, as a float."""
    if isinstance(schedule, LearningRateSchedule):
        return learning_rate_tensor(schedule(step))
    return learning_rate_tensor(schedule)


def serialize(schedule):
    if isinstance(schedule, LearningRateSchedule):
        return keras.saving.serialize_keras_object(schedule)
    return schedule


def deserialize(config):
    if isinstance(config, dict):
        return keras.saving.deserialize_keras_object(config)
    return config
