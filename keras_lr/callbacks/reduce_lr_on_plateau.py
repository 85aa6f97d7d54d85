"""Cutting the learning rate when a metric stops improving."""

from keras_lr import _checks
from keras_lr.callbacks import _rules
from keras_lr.callbacks._rollback import _RollbackCallback


class ReduceLROnPlateau(_RollbackCallback):
    """Reduces the learning rate when a metric has stopped improving.

    Keras' arguments and defaults, plus what users asked for: it works
    when the optimizer's rate is a float or any schedule (ours or
    Keras'), a relative threshold, a smoothed metric, backtracking to the
    best epoch, and a state that survives a resumed run.

    A cut multiplies the rate from the next step on, through the
    optimizer's rate controller (`keras_lr.control`): a float rate is
    multiplied as Keras does it (`float32(float64(lr) * factor)`, to the
    bit); a schedule gets a factor, so warmup, then cosine, then a cut
    gives `factor * cosine(step)` without retracing the training step. The
    factor is saved with the optimizer, so a resumed run keeps it.

    Patience follows Keras: the rate is cut when the number of consecutive
    epochs without improvement *reaches* `patience` (PyTorch cuts when it
    *exceeds* it, one epoch later: Keras `patience=p` is PyTorch
    `patience=p - 1`).

    ```python
    improved = value < best - min_delta          # "abs", mode "min"
    improved = value < best * (1 - min_delta)    # "rel", mode "min"
    # value: the mean of the last `smoothing` epochs' metric
    ```

    Args:
        monitor: A string. The metric to watch, a key of the epoch logs.
        factor: A Python float in (0, 1). `new_lr = lr * factor`.
        patience: A Python int >= 0. Epochs without improvement after
            which the rate is cut.
        verbose: An int. 1: print a message at every cut.
        mode: `"auto"`, `"min"` or `"max"`. `"auto"` decides as Keras 3
            does, at the first epoch end: the loss is minimized, a compiled
            metric goes the way it knows (`val_auc` and accuracies up);
            any other name is an error.
        min_delta: A Python float >= 0. Improvement threshold.
        cooldown: A Python int >= 0. Epochs to wait after a cut before
            counting again.
        min_lr: A Python float >= 0. Lower bound on the rate. For a
            schedule it bounds the rate at the moment of the cut (the
            factor is clamped); the schedule itself may decay below it.
        threshold_mode: `"abs"` (Keras' rule, the default) or `"rel"`
            (PyTorch's default): see the formula above.
        smoothing: A Python int >= 1. Compare the mean of the last
            `smoothing` values (1: the raw metric), for noisy metrics.
        backtrack: A bool. When cutting, also restore the weights and the
            optimizer state (moments, slots) saved at the best epoch, bit
            for bit, except that the slots which carry the rate (SGD's and
            RMSprop's momentum, Ftrl's `linear`) are rescaled to the new
            rate, as if it had been in force when they were built: the
            first steps after the cut then move at the new speed, not the
            old one (see `keras_lr.callbacks._rate_slots` for the rule of
            every Keras optimizer; another optimizer class warns). The
            step counter is not rolled back (schedules go on). Costs one
            host copy of the weights per improving epoch.

    Raises:
        ValueError: for `factor` outside (0, 1), negative `patience`,
            `cooldown`, `min_delta` or `min_lr`, or an unknown mode.

    Example:

    ```python
    schedule = keras_lr.schedules.CosineDecay(
        0.0, 300, warmup_target=0.1, warmup_steps=30
    )
    model.compile(keras.optimizers.SGD(schedule, momentum=0.9), "mse")
    model.fit(x, y, validation_split=0.1, epochs=10, callbacks=[
        keras_lr.callbacks.ReduceLROnPlateau(patience=3, backtrack=True)
    ])
    ```
    """

    _snapshot_attribute = "_best_snapshot"

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
        threshold_mode="abs",
        smoothing=1,
        backtrack=False,
    ):
        super().__init__(monitor, verbose)
        _checks.check_open_interval("factor", factor, 0.0, 1.0)
        _checks.check_choice("mode", mode, _rules.MODES)
        _checks.check_non_negative("min_lr", min_lr)
        _checks.check_bool("backtrack", backtrack)
        self.factor = factor
        self.patience = patience
        self.mode = mode
        self.min_delta = min_delta
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.threshold_mode = threshold_mode
        self.smoothing = smoothing
        self.backtrack = backtrack
        # Validates patience, min_delta, cooldown, threshold_mode, smoothing.
        self.tracker = _rules.PlateauTracker(
            mode=mode,
            patience=patience,
            min_delta=min_delta,
            threshold_mode=threshold_mode,
            cooldown=cooldown,
            smoothing=smoothing,
        )
        self.best_epoch = None
        self._best_snapshot = None

    def _reset(self):
        self.tracker.reset()
        self.best_epoch = None
        self._best_snapshot = None

    @property
    def best(self) -> float:
        return self.tracker.best

    @property
    def wait(self) -> int:
        return self.tracker.wait

    @property
    def cooldown_counter(self) -> int:
        return self.tracker.cooldown_counter

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            # As Keras: the rate used during this epoch.
            logs["learning_rate"] = self._controller.current()
        value = self._value(logs)
        if value is None:
            return
        self.tracker.resolve(self.monitor, self.model)
        best_before = self.tracker.best
        act = self.tracker.update(value)
        if self.tracker.best != best_before:
            self.best_epoch = epoch
            if self.backtrack:
                self._best_snapshot = _rules.Snapshot(
                    self.model, self._controller.current()
                )
        if not act:
            return
        new_lr = _rules.cut(self._controller, self.factor, self.min_lr)
        if new_lr is None:
            return
        restored = ""
        if self.backtrack and self._best_snapshot is not None:
            self._best_snapshot.restore(self.model, new_lr)
            restored = (
                f" and restoring the weights of epoch {self.best_epoch + 1}"
            )
        self._say(
            f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
            f"to {new_lr:.6g}{restored}."
        )

    def _state(self):
        state = self.tracker.get_state()
        state["best_epoch"] = self.best_epoch
        return state

    def _load(self, state):
        self.tracker.set_state(state)
        best_epoch = state.get("best_epoch")
        self.best_epoch = None if best_epoch is None else int(best_epoch)
