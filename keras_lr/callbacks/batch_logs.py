"""The learning rate, momentum and batch size in every batch's logs."""

import keras

from keras_lr.control import rate_controller
from keras_lr.control.tables import RowReader
from keras_lr.data.loader import GrowingBatchLoader


class LogRateInBatchLogs(keras.callbacks.Callback):
    """Adds the learning rate (and momentum, batch size) to the batch logs.

    `keras.callbacks.TensorBoard(update_freq="batch")`, `CSVLogger`-like
    batch loggers and the progress bar write what is in the batch logs,
    and Keras puts only the metrics there, so the per-step learning rate
    is missing. This callback adds, at the end of every batch:

    - `"learning_rate"`: the rate the optimizer step just taken used,
      whatever drives it (a float, any schedule, keras_lr's cyclic,
      one-cycle, plateau and batch-size callbacks, a Keras callback
      assigning the rate): it is read through the optimizer's rate
      controller (`keras_lr.control.rate_controller`).
    - `"momentum"` or `"beta_1"` (named after the optimizer's attribute)
      when the optimizer has one: SGD created with `momentum > 0`, or an
      Adam-family `beta_1`; a cycled momentum is followed step by step.
    - `"batch_size"` when given `loader`: the batch size of the current
      epoch (the last batch of an epoch may hold fewer samples).

    TensorBoard then writes them as `batch_learning_rate`,
    `batch_momentum` (or `batch_beta_1`) and `batch_batch_size` under
    `log_dir/train`, against its count of batches.

    Place it BEFORE `keras.callbacks.TensorBoard` in the callbacks list.
    Keras' `CallbackList` builds one logs dict per batch and passes that
    same dict to each callback in list order, so TensorBoard sees these
    keys only when this callback has run first; placed after it, the
    scalars are silently missing. A callback cannot see the others in the
    list, so the order cannot be checked here.

    The rate and a cycled momentum are recorded in-graph as the optimizer
    reads them (the recorder `keras_lr.callbacks.LearningRateLogger` uses,
    shared with it), and the batch hook reads the step's row with one raw
    variable read. With `steps_per_execution=N` the batch hooks fire once
    per call of N steps: the logs then hold the rate (and momentum) of
    the last of those N steps, the last step their loss and metrics
    include. For every step's rate without any per-batch cost, use
    `keras_lr.callbacks.LearningRateLogger` instead.

    Cost: one in-graph assignment per step and one small device-to-host
    read per batch: 1.7% of a small MLP's CPU time per step on a 2-core
    CPU box, measured with `benchmarks/callbacks_bench.py` (the eager
    read of the rate it replaced cost 12%). On TensorFlow, Keras 3
    already converts every batch's logs to host floats, so nothing else
    waits.

    Args:
        loader: `None` or the `keras_lr.data.GrowingBatchLoader` feeding
            `fit` (itself or through `loader.as_dataset()`). With a
            loader, the logs also get `"batch_size"`.

    Raises:
        TypeError: if `loader` is not a `GrowingBatchLoader` or `None`.

    Example:

    ```python
    model.fit(x, y, epochs=5, callbacks=[
        keras_lr.callbacks.OneCycleLR(1e-2),
        keras_lr.callbacks.LogRateInBatchLogs(),  # before TensorBoard
        keras.callbacks.TensorBoard("logs", update_freq="batch"),
    ])
    ```
    """

    def __init__(self, loader=None):
        super().__init__()
        if loader is not None and not isinstance(loader, GrowingBatchLoader):
            raise TypeError(
                "Argument `loader` must be a "
                "`keras_lr.data.GrowingBatchLoader` or None. Received: "
                f"loader of type {type(loader).__name__}"
            )
        self.loader = loader
        self._controller = None
        self._reader = None

    def set_model(self, model):
        super().set_model(model)
        if getattr(model, "optimizer", None) is not None:
            # Installing it here, before `fit` traces its train function,
            # keeps the install from costing a retrace.
            self._controller = rate_controller(model)

    def on_train_begin(self, logs=None):
        self._controller = rate_controller(self.model)
        # Attached before the first step (a retrace now costs nothing).
        self._controller.recorder(0)

    def on_epoch_begin(self, epoch, logs=None):
        controller = self._controller
        # Every callback's `on_train_begin` has run: the recorder is final.
        recorder = controller.recorder(0)
        if self._reader is None or self._reader.recorder is not recorder:
            self._reader = RowReader(recorder)
        # The row of a step is its index in the epoch (clipped to the
        # table); `LearningRateLogger` assigns the same start.
        recorder.epoch_start.assign(controller.step())
        self._last_row = recorder.capacity
        self._momentum = controller.recorded_momentum
        self._fixed_momentum = None
        if self._momentum is None:
            self._fixed_momentum = controller.momentum_name(required=False)

    def on_train_batch_end(self, batch, logs=None):
        if logs is None:
            return
        # `batch` is the epoch index of the call's last step. (On JAX the
        # values live in `fit`'s state mid-epoch: written back first.)
        self._controller.sync()
        row = self._reader.read()[min(batch, self._last_row)]
        logs["learning_rate"] = float(row[0])
        if self._momentum is not None:
            # Driven in-graph (a cyclic callback): the value at this step.
            logs[self._momentum] = float(row[1])
        elif self._fixed_momentum is not None:
            name = self._fixed_momentum
            logs[name] = float(getattr(self._controller.optimizer, name))
        if self.loader is not None:
            logs["batch_size"] = int(self.loader.batch_size)
