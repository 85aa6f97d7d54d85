"""One per-step rate recorder per rate controller, shared by the callbacks
that read it (`LearningRateLogger`, `LogRateInBatchLogs`).

A rate controller writes into one recorder at a time; two callbacks each
installing their own would take it from each other. They ask here
instead, and get the same recorder, large enough for both.
"""

import weakref

import keras
import numpy as np
from keras import ops

from keras_lr import _keras_internals as internals
from keras_lr.control import StepRecorder

_recorders = weakref.WeakKeyDictionary()  # RateController -> recorder


class LastStepRecorder:
    """`StepRecorder` with room for one step (`capacity=0`): the last
    step's rate and momentum, in one assignment per step (the indexed
    write costs several graph ops, a few percent of a small model's
    step on CPU)."""

    capacity = 0

    def __init__(self):
        self.epoch_start = keras.Variable(
            0, dtype="int64", trainable=False, name="epoch_start"
        )
        self.values = keras.Variable(
            np.zeros((1, 2), "float32"),
            trainable=False,
            name="recorded_rates",
        )

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
        return np.asarray(self.values.numpy())[:steps]


def shared_recorder(controller, capacity: int):
    """The recorder `controller` writes into, with room for at least
    `capacity` steps per epoch (made, or made larger, and attached now:
    attaching a new one traces the train function again, so callers ask
    before the first step). `capacity=0` (the last step only) gets a
    `LastStepRecorder`."""
    recorder = _recorders.get(controller)
    if recorder is None or recorder.capacity < capacity:
        held = 0 if recorder is None else recorder.capacity
        capacity = max(int(capacity), held)
        recorder = StepRecorder(capacity) if capacity else LastStepRecorder()
        _recorders[controller] = recorder
    controller.start_recording(recorder)
    return recorder


class RowReader:
    """Reads a recorder's table to the host, with one raw read on
    TensorFlow (a Keras variable's `numpy()` costs three times as much,
    which a per-batch hook pays at every step)."""

    def __init__(self, recorder: StepRecorder):
        self.recorder = recorder
        self._handles = internals.raw_variable_handles([recorder.values])

    def read(self) -> np.ndarray:
        if self._handles is not None:
            return internals.read_handles(self._handles)[0].numpy()
        return np.asarray(self.recorder.values.numpy())
