"""The range test's traced function and loss record, kept per model.

Tracing the train function costs more than the steps of a short sweep:
`LRRangeTest` keeps what it traced (`TracedTest`) for the next test on
the same model.
"""

import weakref

import keras
import numpy as np
from keras import ops

from keras_lr import _backend
from keras_lr import _keras_internals as internals
from keras_lr import _model_state

# The traced test is kept in the model's record (`keras_lr._model_state`)
# for the next test on the model. It refers to the model (a traced train
# function holds its model), so a record holding it would keep the model
# alive for good: only the last `KEPT_MODELS` models tested keep theirs
# (a model and its twin, say), and a test on another model drops the
# oldest. At most that many models outlive their last use, until tests on
# other models drop them.
KEPT_MODELS = 2
_kept = []  # weak references to those models, the last tested last


def kept_traced_test(model):
    """The `TracedTest` kept for `model`, or `None`."""
    return _model_state.record(model).range_test


def keep_traced_test(model, traced) -> None:
    """Keeps `traced` for the next test on `model`, dropping the one kept
    for the model tested longest ago when more would be kept."""
    alive = [ref() for ref in _kept]
    others = [m for m in alive if m is not None and m is not model]
    for old in others[: max(0, len(others) - KEPT_MODELS + 1)]:
        _model_state.record(old).range_test = None
        others.remove(old)
    _model_state.record(model).range_test = traced
    _kept[:] = [weakref.ref(m) for m in others + [model]]


class LossRecord(keras.metrics.Metric):
    """The loss record as a metric's variables (JAX).

    JAX's train step computes the loss as a pure function of the model's
    and the metrics' variables, so the record is written there only if it
    is a metric's; the column is this record's own count of training
    steps (the optimizer's step is not in that state). Its state spans
    the test: `fit` resets the metrics each epoch, this one stays.
    """

    def __init__(self, capacity: int):
        super().__init__(name="keras_lr_range_test_record")
        self.record = self.add_variable(
            shape=(2, capacity),
            initializer="zeros",
            dtype="float32",
            name="record",
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", dtype="int32", name="count"
        )

    def update_state(self, *args, **kwargs):
        pass

    def reset_state(self):
        pass

    def result(self):
        # Nothing in the logs.
        return {}


def capacity(num_steps: int) -> int:
    """Steps the loss record holds: a power of two (>= 128), so that tests
    of similar lengths share one trace."""
    return max(128, 1 << (int(num_steps) - 1).bit_length())


class TracedTest:
    """What a range test installs on a model, kept for the next test.

    Tracing the train function costs more than the steps of a short sweep,
    so the loss record, the recording `compute_loss` and the traced
    function are kept (`keep_traced_test`) and installed again by the
    next test on the model, as long as nothing the graph captured has
    changed (`matches` compares each by identity; the model's own train
    function stands for the rate controller, whose every change of shape
    rebuilds it) and the record is long enough. The sweep itself is the
    controller's curve, which the next test fills anew in place.
    """

    def __init__(self, key, capacity: int, strategy):
        self.key = key
        self.capacity = int(capacity)
        with strategy.scope():
            # The sweep's first optimizer step: the record's column 0.
            self.start = keras.Variable(
                0,
                dtype=_backend.int64(),
                trainable=False,
                name="lr_range_test_start",
            )
            # Row 0: the loss of each step, row 1: 1 where a step wrote.
            self.metric = None
            if _backend.is_jax():
                self.metric = LossRecord(self.capacity)
                self.buffer = self.metric.record
            else:
                self.buffer = _record_variable(self.capacity)
        self.recording_loss = None
        self.function = None
        self.traced = False

    def begin(self, start: int, recorded: int) -> None:
        """The sweep's first optimizer step is `start`; `recorded` losses
        are in the record already (a resumed test)."""
        self.start.assign(start)
        if self.metric is not None:
            self.metric.count.assign(recorded)

    @staticmethod
    def key_of(model, train_function, compute_loss):
        return (
            train_function,
            model.optimizer,
            getattr(compute_loss, "__func__", compute_loss),
            _backend.strategy_of(model),
            getattr(model, "steps_per_execution", 1),
            getattr(model, "jit_compile", None),
            tuple(model.trainable_variables),
        )

    def matches(self, key, num_steps: int) -> bool:
        # A record far longer than needed would cost time at every step.
        fits = num_steps <= self.capacity <= 8 * capacity(num_steps)
        return (
            fits
            and len(key) == len(self.key)
            and all(_same(a, b) for a, b in zip(key, self.key))
        )


def _record_variable(capacity: int):
    zeros = np.zeros((2, capacity), dtype="float32")
    if not _backend.is_tensorflow():
        return keras.Variable(
            zeros, trainable=False, name="lr_range_test_record"
        )
    tf = _backend.tensorflow("The range test")
    # On-read sync: each replica adds its own share and reading sums
    # them, the way Keras' metric variables work.
    return tf.Variable(
        zeros,
        trainable=False,
        aggregation=tf.VariableAggregation.SUM,
        synchronization=tf.VariableSynchronization.ON_READ,
        name="lr_range_test_record",
    )


def _same(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(x is y for x, y in zip(a, b))
    if a is None or isinstance(a, (bool, int, str)):
        return a == b
    return a is b


def recording_compute_loss(compute_loss, iterations, traced):
    """`compute_loss` that also writes each training step's loss.

    The column of the step is the optimizer's raw step (the position the
    rate controller's curve is looked up at) minus the sweep's first step.
    """
    buffer, start, capacity = traced.buffer, traced.start, traced.capacity

    def column():
        if traced.metric is not None:
            count = traced.metric.count
            index = count.value
            count.assign(index + 1)
            return index
        return ops.cast(iterations, "int32") - ops.cast(start, "int32")

    def recording_compute_loss(*args, **kwargs):
        loss = compute_loss(*args, **kwargs)
        if kwargs.get("training", True):
            traced.traced = True
            index = column()
            row = ops.one_hot(index, capacity, dtype="float32")
            value = ops.cast(ops.stop_gradient(loss), "float32")
            buffer.assign_add(ops.stack([row * value, row]))
        return loss

    return recording_compute_loss


def read_record(variable) -> np.ndarray:
    """The value of the loss record, read once per execution.

    Under a distribution strategy the replicas' shares are summed; on one
    device the bare read op skips `tf.Variable`'s Python layers, which
    cost more than the read itself and are paid at every step.
    """
    tf = _backend.tensorflow_if_loaded()
    if not _backend.is_tensorflow():
        return _backend.to_numpy(variable)
    if isinstance(variable, tf.distribute.DistributedValues):
        return variable.numpy()
    (value,) = internals.read_handles([(variable.handle, variable.dtype)])
    return value.numpy()
