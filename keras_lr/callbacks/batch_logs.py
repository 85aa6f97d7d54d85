"""The learning rate, momentum and batch size in every batch's logs."""

import keras

from keras_lr.control import rate_controller
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

    The rate is read when the batch begins, as the rate the optimizer
    counter points to, and written to the logs when it ends (after the
    step, the counter already points to the next step). With
    `steps_per_execution=N` the batch hooks fire once per call of N steps:
    the logs then hold the rate (and momentum) of the first of those N
    steps, i.e. the rate in force when the call began. For every step's
    rate without any per-batch cost, use
    `keras_lr.callbacks.LearningRateLogger` instead.

    Cost: one small device-to-host read per batch (the rate, and the
    momentum when cycled). `TensorBoard(update_freq="batch")` already
    reads the metrics to the host every batch, so next to it this adds
    little; it does add a sync per batch where nothing else reads the
    batch logs.

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
        self._pending = {}

    def set_model(self, model):
        super().set_model(model)
        if getattr(model, "optimizer", None) is not None:
            # Installing it here, before `fit` traces its train function,
            # keeps the install from costing a retrace.
            self._controller = rate_controller(model)

    def on_train_begin(self, logs=None):
        self._controller = rate_controller(self.model)
        self._pending = {}

    def on_train_batch_begin(self, batch, logs=None):
        controller = self._controller
        values = {"learning_rate": controller.current()}
        name = controller.recorded_momentum
        if name is not None:
            # Driven in-graph (a cyclic callback): the value at this step.
            values[name] = controller.current_momentum()
        else:
            name = controller.momentum_name(required=False)
            if name is not None:
                values[name] = float(getattr(controller.optimizer, name))
        if self.loader is not None:
            values["batch_size"] = int(self.loader.batch_size)
        self._pending = values

    def on_train_batch_end(self, batch, logs=None):
        if logs is not None:
            logs.update(self._pending)
