"""The learning rate (and a cycled momentum) at every optimizer step."""

import os
import warnings

import keras
import numpy as np
from keras import ops

from keras_lr import _checks
from keras_lr import _lr_control
from keras_lr.callbacks import _momentum

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule

# History keys: one float per optimizer step, all epochs of the run.
RATE_KEY = "learning_rate_per_step"
MOMENTUM_KEY = "{}_per_step"  # "momentum_per_step" or "beta_1_per_step"


class _StepBuffer:
    """Values written in-graph at `step - epoch_start`, read once an epoch.

    Row `i` holds (rate, momentum) of the epoch's step `i`. One spare row
    past `capacity` takes the writes that land beyond it (eager reads of
    the rate between epochs, steps past the capacity), so a step costs
    one small update and no branch.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.epoch_start = keras.Variable(
            0, dtype="int64", trainable=False, name="epoch_start"
        )
        self.values = keras.Variable(
            np.zeros((capacity + 1, 2), "float32"),
            trainable=False,
            name="rates",
        )

    def write(self, step, rate, momentum) -> None:
        index = ops.minimum(
            ops.cast(step, "int64") - self.epoch_start, self.capacity
        )
        row = ops.reshape(
            ops.stack(
                [ops.cast(rate, "float32"), ops.cast(momentum, "float32")]
            ),
            (1, 2),
        )
        # `scatter_update` is a native op; `slice_update` is an XLA op on
        # TensorFlow, compiled on demand at every call outside XLA.
        self.values.assign(
            ops.scatter_update(self.values, ops.reshape(index, (1, 1)), row)
        )

    def read(self, steps: int) -> np.ndarray:
        return ops.convert_to_numpy(self.values)[:steps]


class RecordedLearningRate:
    """Stands in for the optimizer's rate and records every value read.

    Not a `LearningRateSchedule`: Keras calls a plain callable without the
    step (we read the optimizer's own counter), and lets
    `optimizer.learning_rate = x` go through to `assign`, so Keras'
    `LearningRateScheduler` and `ReduceLROnPlateau` keep working on a
    float rate. `keras_lr._lr_control` sees through it
    (`inner_learning_rate`). Saved in a config, it is its inner rate.
    """

    def __init__(self, inner_learning_rate, optimizer, buffer: _StepBuffer):
        self.inner_learning_rate = inner_learning_rate
        self._optimizer = optimizer
        self._buffer = buffer

    def __call__(self):
        step = self._optimizer._iterations
        inner = self.inner_learning_rate
        if isinstance(inner, LearningRateSchedule):
            value = inner(step)
        elif callable(inner) and not isinstance(inner, keras.Variable):
            value = inner()
        else:
            value = ops.convert_to_tensor(inner)
        momentum = 0.0
        for name in _momentum.ATTRIBUTES:
            held = getattr(self._optimizer, name, None)
            if isinstance(held, _momentum.InGraphValue):
                momentum = held.tensor("float32")
        self._buffer.write(step, value, momentum)
        return value

    def assign(self, value):
        if not isinstance(self.inner_learning_rate, keras.Variable):
            # Keras' own message for setting a float on a scheduled rate.
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` "
                "object as its `learning_rate` constructor argument, hence "
                "its learning rate is not settable."
            )
        self.inner_learning_rate.assign(value)

    def get_config(self):
        inner = self.inner_learning_rate
        if isinstance(inner, keras.Variable):
            return {"learning_rate": float(ops.convert_to_numpy(inner))}
        return {"learning_rate": keras.saving.serialize_keras_object(inner)}

    @classmethod
    def from_config(cls, config):
        rate = config["learning_rate"]
        if isinstance(rate, dict):
            return keras.saving.deserialize_keras_object(rate)
        return rate


keras.saving.register_keras_serializable(package="keras_lr")(
    RecordedLearningRate
)


class LearningRateLogger(keras.callbacks.Callback):
    """Logs the learning rate of every optimizer step, and the momentum.

    Keras logs the rate once per epoch. This callback records the rate
    the optimizer actually used at every step, in-graph (the rate is
    written into a device buffer as the optimizer reads it), and reads
    the buffer once per epoch: no host sync per step, exact also with
    `steps_per_execution > 1`, and it sees the rate whatever sets it (a
    schedule, keras_lr's cyclic and plateau callbacks, a Keras callback
    assigning the rate). When a keras_lr cyclic callback cycles the
    momentum (SGD `momentum` or `beta_1`), it is recorded too.

    Where it goes:
    - `History` (what `fit` returns), at the end of training:
      `"learning_rate_per_step"`, a flat list with one float per optimizer
      step of the run, and `"momentum_per_step"` or `"beta_1_per_step"`
      when cycled. During training the same lists grow epoch by epoch in
      the callback's `learning_rates` and `momenta` attributes. The epoch
      logs get `"learning_rate"` (the rate of the epoch's last step) when
      no other callback has set it.
    - TensorBoard, with `log_dir`: scalars `learning_rate` (and the
      momentum's name) at every step (x axis: optimizer iterations) under
      `log_dir/train`, where `keras.callbacks.TensorBoard` writes, and
      `epoch_learning_rate` per epoch.

    Add it once; the order among callbacks does not matter.

    Args:
        log_dir: A string or `None`. TensorBoard directory (the one given
            to `keras.callbacks.TensorBoard`), or `None` for History only.
        capacity: A Python int > 0 or `None`. Steps recorded per epoch;
            `None` uses the epoch length `fit` knows (or 4096 for a
            dataset of unknown length). Steps past it are not recorded,
            with one warning.

    Example:

    ```python
    history = model.fit(x, y, epochs=5, callbacks=[
        keras_lr.callbacks.OneCycleLR(1e-2),
        keras_lr.callbacks.LearningRateLogger(log_dir="logs"),
    ])
    rates = history.history["learning_rate_per_step"]
    ```
    """

    def __init__(self, log_dir=None, capacity=None):
        super().__init__()
        if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(
                "Argument `log_dir` must be a path or None. Received: "
                f"log_dir={log_dir!r}"
            )
        if capacity is not None:
            _checks.check_positive_int("capacity", capacity)
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.capacity = capacity
        self._buffer = None
        self._wrapper = None
        self._writer = None

    def _iterations(self) -> int:
        base = _lr_control.base_optimizer(self.model.optimizer)
        return int(ops.convert_to_numpy(base._iterations))

    def on_train_begin(self, logs=None):
        capacity = self.capacity or self.params.get("steps") or 4096
        if self._buffer is None or self._buffer.capacity != capacity:
            self._buffer = _StepBuffer(int(capacity))
        self._warned = False
        self.learning_rates, self.momenta = [], []
        self._momentum_name = None
        optimizer = _lr_control.base_optimizer(self.model.optimizer)
        # Seen through: a wrapper left by an interrupted run is replaced.
        self._wrapper = RecordedLearningRate(
            _lr_control.get_learning_rate_object(optimizer),
            optimizer,
            self._buffer,
        )
        optimizer._learning_rate = self._wrapper
        if getattr(self.model, "train_function", None) is not None:
            self.model.make_train_function(force=True)
        if self.log_dir is not None and self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "train")
            )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._iterations()
        self._buffer.epoch_start.assign(self._epoch_start)

    def on_epoch_end(self, epoch, logs=None):
        steps = self._iterations() - self._epoch_start
        kept = min(steps, self._buffer.capacity)
        if steps > kept and not self._warned:
            warnings.warn(
                f"LearningRateLogger recorded {kept} of the {steps} steps of "
                f"epoch {epoch + 1}. Pass a larger `capacity`.",
                stacklevel=2,
            )
            self._warned = True
        values = self._buffer.read(kept)
        rates = values[:, 0].tolist()
        momenta = None
        optimizer = _lr_control.base_optimizer(self.model.optimizer)
        for name in _momentum.ATTRIBUTES:
            held = getattr(optimizer, name, None)
            if isinstance(held, _momentum.InGraphValue):
                self._momentum_name = name
                momenta = values[:, 1].tolist()
        self._store(rates, momenta)
        if logs is not None and rates and "learning_rate" not in logs:
            logs["learning_rate"] = rates[-1]
        if self._writer is not None:
            self._write(epoch, rates, momenta)

    def _store(self, rates, momenta) -> None:
        self.learning_rates.extend(rates)
        if momenta is not None:
            self.momenta.extend(momenta)

    def _write(self, epoch, rates, momenta) -> None:
        import tensorflow as tf

        # `tf.summary.write` with the scalars plugin's metadata is what
        # `tf.summary.scalar` writes, without needing the tensorboard
        # package at training time.
        metadata = tf.compat.v1.SummaryMetadata(
            plugin_data=tf.compat.v1.SummaryMetadata.PluginData(
                plugin_name="scalars"
            ),
            data_class=1,  # DATA_CLASS_SCALAR
        )

        def scalar(tag, value, step):
            tf.summary.write(
                tag, tf.constant(value, tf.float32), step, metadata=metadata
            )

        first = self._epoch_start
        with self._writer.as_default():
            for offset, rate in enumerate(rates):
                scalar("learning_rate", rate, first + offset)
                if momenta is not None:
                    scalar(self._momentum_name, momenta[offset], first + offset)
            if rates:
                scalar("epoch_learning_rate", rates[-1], epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        # `model.history` is this run's `History` only once an epoch ended.
        history = getattr(getattr(self.model, "history", None), "history", None)
        if isinstance(history, dict):
            history[RATE_KEY] = list(self.learning_rates)
            if self._momentum_name is not None:
                key = MOMENTUM_KEY.format(self._momentum_name)
                history[key] = list(self.momenta)
        optimizer = _lr_control.base_optimizer(self.model.optimizer)
        if optimizer._learning_rate is self._wrapper:
            optimizer._learning_rate = self._wrapper.inner_learning_rate
            if getattr(self.model, "train_function", None) is not None:
                self.model.make_train_function(force=True)
        self._wrapper = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
