"""The learning rate (and a cycled momentum) at every optimizer step."""

import os
import warnings

import keras

from keras_lr import _checks
from keras_lr.control import rate_controller

# History keys: one float per optimizer step, all epochs of the run.
RATE_KEY = "learning_rate_per_step"
MOMENTUM_KEY = "{}_per_step"  # "momentum_per_step" or "beta_1_per_step"


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
        self._recorder = None
        self._controller = None
        self._writer = None

    def set_model(self, model):
        super().set_model(model)
        if getattr(model, "optimizer", None) is not None:
            rate_controller(model)

    def on_train_begin(self, logs=None):
        self._capacity = int(
            self.capacity or self.params.get("steps") or 4096
        )
        self._warned = False
        self.learning_rates, self.momenta = [], []
        self._momentum_name = None
        self._controller = rate_controller(self.model)
        # The recorder stays attached after `fit`, so a second `fit` with
        # this logger traces nothing new. It is shared with
        # `LogRateInBatchLogs` (and may hold more steps than asked for).
        self._recorder = self._controller.recorder(self._capacity)
        if self.log_dir is not None and self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "train")
            )

    def on_epoch_begin(self, epoch, logs=None):
        # Another callback may have made the shared recorder larger.
        self._recorder = self._controller.recorder(self._capacity)
        self._epoch_start = self._controller.step()
        self._recorder.epoch_start.assign(self._epoch_start)

    def on_epoch_end(self, epoch, logs=None):
        steps = self._controller.step() - self._epoch_start
        kept = min(steps, self._capacity)
        if steps > kept and not self._warned:
            warnings.warn(
                f"LearningRateLogger recorded {kept} of the {steps} steps of "
                f"epoch {epoch + 1}. Pass a larger `capacity`.",
                stacklevel=2,
            )
            self._warned = True
        values = self._recorder.read(kept)
        rates = values[:, 0].tolist()
        momenta = None
        name = self._controller.recorded_momentum
        if name is not None:
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
        if self._writer is not None:
            self._writer.close()
            self._writer = None
