"""Growing the batch when a metric stops improving, the batch-size
counterpart of `keras.callbacks.ReduceLROnPlateau` (Smith et al., ICLR
2018)."""


from keras_lr import _checks
from keras_lr.callbacks import _rules
from keras_lr.callbacks._batch_size import BatchSizeCallback
from keras_lr.callbacks._batch_size import check_growth_factor
from keras_lr.callbacks._batch_size import grown


class IncreaseBatchSizeOnPlateau(BatchSizeCallback):
    """Grows the batch by `factor` when a metric has stopped improving.

    The batch-size counterpart of `keras.callbacks.ReduceLROnPlateau`, with
    the same arguments and Keras' patience counting: the batch grows at the
    end of the epoch in which the number of epochs without improvement
    reaches `patience`, and the next epoch runs with it. Above
    `max_batch_size` the growth becomes learning-rate decay by the same
    factor (the paper's hybrid), through the optimizer's rate controller:
    the factor is saved with the optimizer, so a resumed run keeps it.
    Logs as `BatchSizeScheduler` does.

    ```python
    if epochs_without_improvement == patience:
        target = target * factor
        batch_size = min(target, max_batch_size)
        lr = max(lr * (growth not possible within the cap), min_lr)
    ```

    Args:
        loader: The `keras_lr.data.GrowingBatchLoader` feeding `fit`
            (itself or through `loader.as_dataset()`).
        monitor: A string. The quantity to monitor, e.g. `"val_loss"`.
        factor: A Python number > 1. The batch grows to `batch * factor`.
        patience: A Python int >= 0. Epochs without improvement before
            growing.
        mode: `"auto"`, `"min"` or `"max"`. `"auto"` decides as Keras 3
            does, at the first epoch end: the loss is minimized, a compiled
            metric goes the way it knows (`val_auc` and accuracies up);
            any other name is an error.
        min_delta: A Python float >= 0. The improvement threshold.
        threshold_mode: `"abs"` (Keras' rule, default) or `"rel"`.
        cooldown: A Python int >= 0. Epochs to wait after a growth.
        max_batch_size: As in `BatchSizeScheduler` (default `"auto"`).
        lr_coupling: As in `BatchSizeScheduler`.
        verbose: A Python int. 1 prints a message at each change.
        min_lr: A Python float >= 0. Lower bound on the learning rate when
            growth beyond `max_batch_size` is applied as decay, as in
            `keras.callbacks.ReduceLROnPlateau`: the rate becomes
            `max(rate * decay, min_lr)`, and a rate already at or below
            `min_lr` is left alone.

    Raises:
        ValueError: if `factor` <= 1 or another argument is out of range.

    Example:

    ```python
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=16, seed=0)
    grow = keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
        loader, monitor="val_loss", factor=2, patience=3
    )
    model.fit(loader.as_dataset(), steps_per_epoch=loader.steps_per_epoch,
              validation_data=(x_val, y_val), epochs=10, shuffle=False,
              callbacks=[grow])
    ```

    Reference:
        Smith, Kindermans, Ying and Le, "Don't Decay the Learning Rate,
        Increase the Batch Size", ICLR 2018.
    """

    def __init__(
        self,
        loader,
        monitor="val_loss",
        factor=2.0,
        patience=10,
        mode="auto",
        min_delta=1e-4,
        threshold_mode="abs",
        cooldown=0,
        max_batch_size="auto",
        lr_coupling=None,
        verbose=0,
        min_lr=0.0,
    ):
        check_growth_factor(factor)
        _checks.check_non_negative("min_lr", min_lr)
        _checks.check_choice("mode", mode, _rules.MODES)
        self._monitored = _rules.MonitoredValue(type(self).__name__, monitor)
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.mode = mode
        self.min_delta = min_delta
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.min_lr = min_lr
        # Validates patience, min_delta, threshold_mode and cooldown.
        self.tracker = _rules.PlateauTracker(
            mode=mode,
            patience=patience,
            min_delta=min_delta,
            threshold_mode=threshold_mode,
            cooldown=cooldown,
        )
        super().__init__(loader, max_batch_size, lr_coupling, verbose)

    def _reset(self):
        super()._reset()
        self._monitored.reset()
        self.tracker.reset()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        value = self._monitored.read(logs)
        if value is None:
            return
        self.tracker.resolve(self.monitor, self.model)
        if self.tracker.update(float(value)):
            self._set_target(grown(self.target_batch_size, self.factor), epoch)

    def get_state(self):
        state = super().get_state()
        state["tracker"] = self.tracker.get_state()
        return state

    def set_state(self, state):
        super().set_state(state)
        self.tracker.set_state(state["tracker"])
