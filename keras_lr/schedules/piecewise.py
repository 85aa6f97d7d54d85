"""Piecewise constant decay, the seeds' "step annealing"."""

from collections.abc import Sequence

import keras
from keras import ops

from keras_lr import _checks
from keras_lr.schedules import _base


def piecewise_constant(step, boundaries, values):
    """`values[i]` for `boundaries[i-1] < step <= boundaries[i]`.

    The dtype is that of `values[0]` as a rate (an integer becomes a
    float); variables among `values` are read at call time.
    """
    first = _base.learning_rate_tensor(values[0])
    values = ops.stack(
        [first] + [_base.constant(value, first.dtype) for value in values[1:]]
    )
    step = ops.convert_to_tensor(step)
    edges = ops.cast(ops.convert_to_tensor(boundaries), step.dtype)
    index = ops.sum(ops.cast(step > edges, "int32"))
    return ops.take(values, index)


def _check_values(values) -> None:
    """A list of at least two rates: numbers, scalar tensors or variables."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(
            "Argument `values` must be a list of Python numbers, scalar "
            f"tensors or `keras.Variable`s. Received: values={values!r} "
            f"(of type {type(values).__name__})"
        )
    if len(values) < 2:
        raise ValueError(
            "Argument `values` must have at least 2 element(s). "
            f"Received: values={values!r}"
        )


@keras.saving.register_keras_serializable(package="keras_lr")
class PiecewiseConstantDecay(_base.LearningRateSchedule):
    """A `LearningRateSchedule` that is constant between step boundaries.

    A drop-in replacement for
    `keras.optimizers.schedules.PiecewiseConstantDecay`, and the seeds'
    step-wise annealing ("0.1 until step 400, then 0.01 until 700, then
    0.001" is `PiecewiseConstantDecay([400, 700], [0.1, 0.01, 0.001])`).

    ```python
    def learning_rate(step):
        # values[0] while step <= boundaries[0],
        # values[i] while boundaries[i-1] < step <= boundaries[i],
        # values[-1] once step > boundaries[-1].
        return values[sum(step > b for b in boundaries)]
    ```

    Args:
        boundaries: A list of Python numbers, strictly increasing: the steps
            at which the value changes (Keras semantics: the change happens
            after the boundary step).
        values: A list of rates >= 0 (Python floats, scalar tensors or
            `keras.Variable`s, read at every call), one more than
            `boundaries`. The first sets the dtype; ints count as floats.
        name: A string. Name scope of the operations.

    Returns:
        A scalar tensor of the dtype of `values`.

    Raises:
        ValueError: if the lengths do not match, the boundaries are not
            strictly increasing, or a value is negative.

    Example:

    ```python
    schedule = keras_lr.schedules.PiecewiseConstantDecay(
        boundaries=[400, 700], values=[0.1, 0.01, 0.001]
    )
    ```
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        super().__init__()
        _checks.check_number_list("boundaries", boundaries, min_length=1)
        _check_values(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "Argument `values` must have exactly one more element than "
                f"`boundaries`. Received: boundaries={boundaries!r} (length "
                f"{len(boundaries)}), values={values!r} (length {len(values)})"
            )
        _checks.check_strictly_increasing("boundaries", boundaries)
        for value in values:
            _checks.check_non_negative_rate("values", value)
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name):
            return piecewise_constant(step, self.boundaries, self.values)

    def get_config(self):
        return {
            "boundaries": list(self.boundaries),
            "values": [_base.config_value(value) for value in self.values],
            "name": self.name,
        }
