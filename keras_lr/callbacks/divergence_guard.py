"""Rolling back and cutting the learning rate when training diverges."""

import contextlib
import math

from keras_lr import _checks
from keras_lr.callbacks import _rules
from keras_lr.callbacks._rollback import _RollbackCallback


class DivergenceGuard(_RollbackCallback):
    """Rolls back and cuts the rate when training diverges, and goes on.

    At the end of every epoch the monitored loss is checked: when it is
    not finite, or above `threshold` times the best value seen, the
    weights and optimizer state (moments, slots) of the last good epoch
    are restored bit for bit and the rate is multiplied by `factor`;
    training continues from there. The slots that carry the rate (SGD's
    and RMSprop's momentum, Ftrl's `linear`) are rescaled to the new rate,
    as `keras_lr.callbacks.ReduceLROnPlateau(backtrack=True)` does.
    `keras.callbacks.TerminateOnNaN` would end the run instead. The check
    is once per epoch (no host sync per step); the diverged epoch is lost.
    The step counter is not rolled back, so schedules go on; the cut works
    on float rates and schedules as in
    `keras_lr.callbacks.ReduceLROnPlateau`.

    ```python
    diverged = not isfinite(loss) or loss > threshold * best_loss
    ```

    Args:
        monitor: A string. The loss to watch, a key of the epoch logs.
        factor: A Python float in (0, 1). `new_lr = lr * factor`.
        threshold: A Python float > 1. Divergence above `threshold * best`.
        min_lr: A Python float >= 0. Lower bound on the rate.
        max_rollbacks: A Python int > 0 or `None`. After this many
            rollbacks in one `fit`, stop training instead.
        verbose: An int. 1: print a message at every rollback.

    Raises:
        ValueError: for `factor` outside (0, 1), `threshold <= 1`, a
            negative `min_lr` or a non-positive `max_rollbacks`.

    Example:

    ```python
    model.fit(x, y, epochs=10, callbacks=[
        keras_lr.callbacks.DivergenceGuard(factor=0.5, threshold=4.0)
    ])
    ```
    """

    _snapshot_attribute = "_good"

    def __init__(
        self,
        monitor="loss",
        factor=0.5,
        threshold=4.0,
        min_lr=0.0,
        max_rollbacks=None,
        verbose=0,
    ):
        super().__init__(monitor, verbose)
        _checks.check_open_interval("factor", factor, 0.0, 1.0)
        _checks.check_real("threshold", threshold)
        if not threshold > 1.0:
            raise ValueError(
                "Argument `threshold` must be > 1. "
                f"Received: threshold={threshold!r}"
            )
        _checks.check_non_negative("min_lr", min_lr)
        if max_rollbacks is not None:
            _checks.check_positive_int("max_rollbacks", max_rollbacks)
        self.factor = factor
        self.threshold = threshold
        self.min_lr = min_lr
        self.max_rollbacks = max_rollbacks
        self.best = math.inf
        self.rollbacks = 0
        self.last_good_epoch = None
        self._good = None

    def _reset(self):
        self.best = math.inf
        self.rollbacks = 0
        self.last_good_epoch = None
        self._good = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        optimizer = self.model.optimizer
        if not optimizer.built:
            # Keras builds the slots at the first step; the snapshot of the
            # start needs them now (built as `fit` would build them).
            strategy = getattr(self.model, "distribute_strategy", None)
            scope = strategy.scope() if strategy else contextlib.nullcontext()
            with scope:
                optimizer.build(self.model.trainable_variables)
        # The starting point is good by definition: a first epoch that
        # diverges rolls back to it.
        self._good = _rules.Snapshot(self.model, self._controller.current())

    def on_epoch_end(self, epoch, logs=None):
        value = self._value(logs)
        if value is None:
            return
        diverged = not math.isfinite(value) or (
            math.isfinite(self.best) and value > self.threshold * self.best
        )
        if not diverged:
            self.best = min(self.best, value)
            self.last_good_epoch = epoch
            self._good = _rules.Snapshot(
                self.model, self._controller.current()
            )
            return
        self.rollbacks += 1
        if self.max_rollbacks is not None and (
            self.rollbacks > self.max_rollbacks
        ):
            self._say(
                f"\nEpoch {epoch + 1}: DivergenceGuard: {self.monitor}="
                f"{value} after {self.max_rollbacks} rollbacks; stopping."
            )
            self.model.stop_training = True
            return
        new_lr = _rules.cut(self._controller, self.factor, self.min_lr)
        self._good.restore(self.model, self._controller.current())
        where = (
            "the start"
            if self.last_good_epoch is None
            else f"epoch {self.last_good_epoch + 1}"
        )
        rate = "unchanged (at min_lr)" if new_lr is None else f"{new_lr:.6g}"
        self._say(
            f"\nEpoch {epoch + 1}: DivergenceGuard: {self.monitor}={value}; "
            f"restored the state of {where}, learning rate {rate}."
        )

    def _state(self):
        return {
            "best": self.best,
            "rollbacks": self.rollbacks,
            "last_good_epoch": self.last_good_epoch,
        }

    def _load(self, state):
        self.best = float(state["best"])
        self.rollbacks = int(state["rollbacks"])
        last = state.get("last_good_epoch")
        self.last_good_epoch = None if last is None else int(last)
