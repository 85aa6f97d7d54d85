"""A tiny model that records which samples each train step saw."""

import keras
import numpy as np


def id_data(num_samples: int):
    """Inputs whose first column is the sample id, and zero targets."""
    ids = np.arange(num_samples, dtype="float32")
    x = np.stack([ids, np.ones_like(ids)], axis=1)
    y = np.zeros((num_samples, 1), dtype="float32")
    return x, y


class RecordingModel(keras.Sequential):
    """Counts traces of `train_step` and records the ids of every batch.

    `batches` holds one list of ids per (replica) train step; `traces`
    counts Python calls of `train_step`, i.e. tracings of the compiled
    step (once per replica under a distribution strategy).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches = []
        self.traces = 0

    def _record(self, x):
        x = np.asarray(keras.ops.convert_to_numpy(x))
        self.batches.append(np.rint(x[:, 0]).astype(int).tolist())
        return 0

    def train_step(self, *args):
        # TensorFlow and PyTorch: `train_step(data)`; JAX:
        # `train_step(state, data)`.
        backend = keras.backend.backend()
        # PyTorch runs this body at every step, eagerly: one function,
        # never traced again, counts as one trace.
        self.traces = 1 if backend == "torch" else self.traces + 1
        data = args[-1]
        x = data[0]
        if backend == "tensorflow":
            import tensorflow as tf

            token = tf.py_function(self._record, [x], tf.int32)
            with tf.control_dependencies([token]):
                data = (tf.identity(x),) + tuple(data[1:])
        elif backend == "jax":
            import jax

            jax.debug.callback(self._record, x, ordered=True)
        else:  # Eager: the step runs this body every time.
            self._record(x)
        return super().train_step(*args[:-1], data)


def traces_allowed(model, traces: int) -> int:
    """The traces a test allows `model`: `traces` where the train step
    traces once for every batch size (TensorFlow, with an unknown batch
    dimension; PyTorch, which does not trace), and `traces` per batch
    size it trained on under JAX, whose compiled step is specialised to
    its input shapes."""
    if keras.backend.backend() != "jax":
        return traces
    return traces * len({len(batch) for batch in model.batches})


def recording_model(learning_rate=0.0, steps_per_execution=1, **compile_kw):
    """A 2-input linear model; the default rate 0 keeps ids exact."""
    model = RecordingModel(
        [keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
        loss="mse",
        steps_per_execution=steps_per_execution,
        **compile_kw,
    )
    return model


def epochs_of(batches, num_samples):
    """Splits the recorded batches into epochs of `num_samples` ids."""
    epochs, current, count = [], [], 0
    for batch in batches:
        current.append(batch)
        count += len(batch)
        if count == num_samples:
            epochs.append(current)
            current, count = [], 0
        elif count > num_samples:
            raise AssertionError(f"an epoch overran: {count} ids")
    assert not current, "a partial epoch was left over"
    return epochs
