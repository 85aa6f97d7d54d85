"""Cutting the learning rate when training stalls or diverges."""

import contextlib
import math
import warnings

import numpy as np
from keras import ops

from keras_lr import _checks
from keras_lr import _lr_control
from keras_lr.callbacks import _monitor
from keras_lr.callbacks._stateful import StatefulCallback
from keras_lr.schedules.scaled import ScaledSchedule


def _optimizer_state(optimizer) -> list:
    """Optimizer variables that hold training state (slots, moments).

    The step counter and the rate variable are left out: rolling back
    rewinds what was learned, not the clock (schedules go on from the
    current step) and not the rate (the caller is about to cut it).
    """
    base = _lr_control.base_optimizer(optimizer)
    skip = {id(base._iterations), id(optimizer._iterations)}
    skip.add(id(_lr_control.get_learning_rate_object(optimizer)))
    return [v for v in optimizer.variables if id(v) not in skip]


class Snapshot:
    """Host copies of `model.weights` and of the optimizer's state."""

    def __init__(self, model):
        self.weights = [
            np.array(ops.convert_to_numpy(v)) for v in model.weights
        ]
        self.optimizer = [
            np.array(ops.convert_to_numpy(v))
            for v in _optimizer_state(model.optimizer)
        ]

    @classmethod
    def from_arrays(cls, arrays: dict) -> "Snapshot":
        """A snapshot rebuilt from `to_arrays()` (a restored backup)."""
        snapshot = cls.__new__(cls)
        snapshot.weights = list(arrays["weights"])
        snapshot.optimizer = list(arrays["optimizer"])
        return snapshot

    def to_arrays(self) -> dict:
        return {"weights": self.weights, "optimizer": self.optimizer}

    def restore(self, model) -> None:
        """Assigns the copies back, bit for bit."""
        state = _optimizer_state(model.optimizer)
        if len(state) != len(self.optimizer) or len(model.weights) != len(
            self.weights
        ):
            raise RuntimeError(
                "Cannot roll back: the model or its optimizer changed its "
                "variables since the snapshot was taken."
            )
        for variable, value in zip(model.weights, self.weights):
            variable.assign(value)
        for variable, value in zip(state, self.optimizer):
            variable.assign(value)


def _scale_of(optimizer) -> float | None:
    rate = _lr_control.get_learning_rate_object(optimizer)
    return rate.scale if isinstance(rate, ScaledSchedule) else None


def cut_learning_rate(model, factor: float, min_lr: float) -> float | None:
    """Multiplies the rate by `factor`, not below `min_lr`.

    Works for a float rate and for any schedule (wrapped once in a
    `ScaledSchedule`). For a schedule, `min_lr` bounds the rate at the
    moment of the cut: the factor is clamped so that the next step's rate
    is `max(rate * factor, min_lr)`; the schedule may still decay below it
    afterwards. Returns the new rate, or `None` when the rate is already
    at or below `min_lr` (nothing is changed).
    """
    current = _lr_control.current_learning_rate(model.optimizer)
    # Compared in float32, as the optimizer holds it (Keras does the same).
    if not current > np.float32(min_lr) or current <= 0.0:
        return None
    target = max(current * factor, float(min_lr))
    return _lr_control.multiply_learning_rate(model, target / current)


class _RollbackCallback(StatefulCallback):
    """State handling shared by the plateau and divergence callbacks."""

    def __init__(self, monitor, verbose):
        super().__init__()
        if not isinstance(monitor, str):
            raise TypeError(
                "Argument `monitor` must be a string (a key of the epoch "
                f"logs). Received: monitor={monitor!r}"
            )
        _checks.check_non_negative_int("verbose", verbose)
        self.monitor = monitor
        self.verbose = verbose
        self._resuming = False
        self._warned_missing = False
        self._resume_scale = None

    def _value(self, logs):
        logs = logs or {}
        if self.monitor in logs:
            return float(logs[self.monitor])
        if not self._warned_missing:
            # Once per `fit`: Keras repeats this every epoch.
            warnings.warn(
                f"{type(self).__name__} is conditioned on metric "
                f"`{self.monitor}`, which is not available; it does "
                f"nothing. Available metrics are: {', '.join(sorted(logs))}.",
                stacklevel=3,
            )
            self._warned_missing = True
        return None

    def _say(self, message: str) -> None:
        if self.verbose > 0:
            print(message)

    def on_train_begin(self, logs=None):
        self._warned_missing = False
        if self._resuming:
            self._resuming = False
            if self._resume_scale is not None:
                # The scale of a scheduled rate lives in the schedule, not
                # in the optimizer's variables that a checkpoint restores.
                if _lr_control.has_schedule(self.model.optimizer):
                    scaled = _lr_control.make_scalable(self.model)
                    scaled.scale = self._resume_scale
            return
        self._reset()

    def _reset(self) -> None:
        raise NotImplementedError

    def _state(self) -> dict:
        raise NotImplementedError

    def _load(self, state: dict) -> None:
        raise NotImplementedError

    # Name of the attribute holding the rollback `Snapshot` (or None).
    _snapshot_attribute = None

    def get_arrays(self) -> dict | None:
        """The rollback snapshot's arrays, for `BackupAndRestore`."""
        snapshot = getattr(self, self._snapshot_attribute)
        return None if snapshot is None else snapshot.to_arrays()

    def set_arrays(self, arrays: dict | None) -> None:
        setattr(
            self,
            self._snapshot_attribute,
            None if arrays is None else Snapshot.from_arrays(arrays),
        )

    def get_state(self) -> dict:
        """Counters, best value and current rate scale, JSON-native.

        The weight snapshot used for rolling back is not part of it:
        `get_arrays()` hands it out, and `BackupAndRestore` saves it.
        """
        state = self._state()
        scale = None
        if self.model is not None and self.model.optimizer is not None:
            scale = _scale_of(self.model.optimizer)
        state["scale"] = scale
        return state

    def set_state(self, state: dict) -> None:
        """Takes a state back; the next `fit` resumes instead of resetting."""
        self._load(state)
        if "_arrays" in state:
            self.set_arrays(state["_arrays"])
        scale = state.get("scale")
        self._resume_scale = None if scale is None else float(scale)
        self._resuming = True


class ReduceLROnPlateau(_RollbackCallback):
    """Reduces the learning rate when a metric has stopped improving.

    Keras' arguments and defaults, plus what users asked for: it works
    when the optimizer's rate is a float or any schedule (ours or
    Keras'), a relative threshold, a smoothed metric, backtracking to the
    best epoch, and a state that survives a resumed run.

    A cut multiplies the rate from the next step on. For a float rate the
    variable is multiplied; a schedule is wrapped once in a
    `keras_lr.schedules.ScaledSchedule` whose factor is multiplied, so
    warmup, then cosine, then a cut gives `factor * cosine(step)` without
    retracing the training step.

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
        mode: `"auto"`, `"min"` or `"max"` (`"auto"`: `"max"` for metrics
            whose name contains "acc").
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
            for bit. The step counter is not rolled back (schedules go on).
            Costs one host copy of the weights per improving epoch.

    Raises:
        ValueError: for `factor` outside (0, 1), negative `patience`,
            `cooldown`, `min_delta` or `min_lr`, or an unknown mode.

    Example:

    ```python
    schedule = keras_lr.schedules.CosineDecay(
        0.0, 10_000, warmup_target=0.1, warmup_steps=500
    )
    model.compile(keras.optimizers.SGD(schedule, momentum=0.9), "mse")
    model.fit(x, y, validation_split=0.1, epochs=50, callbacks=[
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
        _checks.check_choice("mode", mode, _monitor.MODES)
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
        self.tracker = _monitor.PlateauTracker(
            mode=_monitor.resolve_mode(mode, monitor),
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
            logs["learning_rate"] = _lr_control.current_learning_rate(
                self.model.optimizer
            )
        value = self._value(logs)
        if value is None:
            return
        best_before = self.tracker.best
        act = self.tracker.update(value)
        if self.tracker.best != best_before:
            self.best_epoch = epoch
            if self.backtrack:
                self._best_snapshot = Snapshot(self.model)
        if not act:
            return
        new_lr = cut_learning_rate(self.model, self.factor, self.min_lr)
        if new_lr is None:
            return
        restored = ""
        if self.backtrack and self._best_snapshot is not None:
            self._best_snapshot.restore(self.model)
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


class DivergenceGuard(_RollbackCallback):
    """Rolls back and cuts the rate when training diverges, and goes on.

    At the end of every epoch the monitored loss is checked: when it is
    not finite, or above `threshold` times the best value seen, the
    weights and optimizer state (moments, slots) of the last good epoch
    are restored bit for bit and the rate is multiplied by `factor`;
    training continues from there. `keras.callbacks.TerminateOnNaN` would
    end the run instead. The check is once per epoch (no host sync per
    step); the diverged epoch is lost. The step counter is not rolled
    back, so schedules go on; the cut works on float rates and schedules
    as in `keras_lr.callbacks.ReduceLROnPlateau`.

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
    model.fit(x, y, epochs=30, callbacks=[
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
        self._good = Snapshot(self.model)

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
            self._good = Snapshot(self.model)
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
        self._good.restore(self.model)
        new_lr = cut_learning_rate(self.model, self.factor, self.min_lr)
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
