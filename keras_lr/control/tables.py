"""The controller's in-graph tables: a curve a callback sets, looked up at
the step, and the per-step record of rate and momentum (with a reader that
costs one raw variable read)."""

import keras
import numpy as np
from keras import ops

from keras_lr import _backend
from keras_lr import _keras_internals as internals


def _host(value) -> np.ndarray:
    return _backend.to_numpy(value)


def capacity_for(length: int) -> int:
    """Table length for a curve of `length` steps: a power of two (>= 128),
    so that curves of similar lengths share one traced graph."""
    return max(128, 1 << (int(length) - 1).bit_length())


class Curve:
    """A float32 table of values, looked up at `step - first`, clipped.

    Where it starts and whether it drives are one int64 variable,
    `position = [first, active]`: every variable a traced step reads is
    one more input to each call of TensorFlow's train function (a few
    microseconds per step), so a curve costs two, not three. Only `set`
    and `deactivate` change the variables, and they keep the table,
    `first` and `active` on the host as well, so nothing is read back to
    know them (PyTorch, whose step runs eagerly, reads its curves there:
    `value_at`).
    """

    def __init__(self, capacity: int, name: str):
        self.table = keras.Variable(
            np.zeros(capacity, "float32"), trainable=False, name=name
        )
        self.position = keras.Variable(
            np.zeros(2, "int64"),
            dtype=_backend.int64(),
            trainable=False,
            name=f"{name}_position",
        )
        self.first = 0
        self._active = False
        # The table as last set, for reads on the host.
        self._values = np.zeros(capacity, "float32")

    @property
    def capacity(self) -> int:
        return int(self.table.shape[0])

    @property
    def variables(self) -> list:
        return [self.table, self.position]

    @property
    def active(self) -> bool:
        """Whether the curve drives."""
        return self._active

    def active_tensor(self):
        return self.position.value[1] > 0

    def set(self, values: np.ndarray, first_step: int) -> None:
        table = np.empty(self.capacity, "float32")
        table[: len(values)] = values
        # Steps past the curve keep its last value.
        table[len(values) :] = values[-1]
        self.table.assign(table)
        self._values = table
        self.first, self._active = int(first_step), True
        self.position.assign(np.array([self.first, 1], "int64"))

    def deactivate(self) -> None:
        self._active = False
        self.position.assign(np.array([self.first, 0], "int64"))

    def value_at(self, step: int) -> np.float32:
        """`lookup` on the host, for a step given as a Python int (an
        eager `lookup` costs milliseconds on TensorFlow)."""
        values = self._values
        return values[min(max(int(step) - self.first, 0), len(values) - 1)]

    def lookup(self, step):
        position = self.position.value
        index = ops.clip(step - position[0], 0, self.capacity - 1)
        return _backend.take(self.table.value, index)


class StepRecorder:
    """Rate and momentum of every step, written in-graph at
    `step - epoch_start` (row `capacity` takes the writes beyond)."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.epoch_start = keras.Variable(
            0, dtype=_backend.int64(), trainable=False, name="epoch_start"
        )
        self.values = keras.Variable(
            np.zeros((self.capacity + 1, 2), "float32"),
            trainable=False,
            name="recorded_rates",
        )

    @property
    def variables(self) -> list:
        return [self.epoch_start, self.values]

    def write(self, step, rate, momentum) -> None:
        index = ops.minimum(step - self.epoch_start.value, self.capacity)
        row = ops.reshape(
            ops.stack(
                [ops.cast(rate, "float32"), ops.cast(momentum, "float32")]
            ),
            (1, 2),
        )
        # `scatter_update` is a native op; `slice_update` would be an XLA
        # op on TensorFlow, compiled on demand at every call outside XLA.
        self.values.assign(
            ops.scatter_update(
                self.values.value, ops.reshape(index, (1, 1)), row
            )
        )

    def read(self, steps: int) -> np.ndarray:
        return _host(self.values)[:steps]


class LastStepRecorder:
    """`StepRecorder` with room for one step (`capacity=0`): the last
    step's rate and momentum, in one assignment per step (the indexed
    write costs several graph ops, a few percent of a small model's
    step on CPU)."""

    capacity = 0

    def __init__(self):
        self.epoch_start = keras.Variable(
            0, dtype=_backend.int64(), trainable=False, name="epoch_start"
        )
        self.values = keras.Variable(
            np.zeros((1, 2), "float32"),
            trainable=False,
            name="recorded_rates",
        )

    @property
    def variables(self) -> list:
        return [self.epoch_start, self.values]

    def write(self, step, rate, momentum) -> None:
        self.values.assign(
            ops.reshape(
                ops.stack(
                    [ops.cast(rate, "float32"), ops.cast(momentum, "float32")]
                ),
                (1, 2),
            )
        )

    def read(self, steps: int) -> np.ndarray:
        return _host(self.values)[:steps]


class RowReader:
    """Reads a recorder's table to the host, with one raw read on
    TensorFlow (a Keras variable's `numpy()` costs three times as much,
    which a per-batch hook pays at every step)."""

    def __init__(self, recorder):
        self.recorder = recorder
        self._handles = internals.raw_variable_handles([recorder.values])

    def read(self) -> np.ndarray:
        if self._handles is not None:
            return internals.read_handles(self._handles)[0].numpy()
        return _host(self.recorder.values)
