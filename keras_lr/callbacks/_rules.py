"""Rules the callbacks share, kept in one place below them.

- Reading a monitored metric and its direction (`mode="auto"` as Keras 3
  decides it), and counting epochs without improvement (`PlateauTracker`):
  an action fires when the count *reaches* `patience`, as in Keras
  (PyTorch fires when it *exceeds* it, one evaluation later).
- The `min_lr` floor of a cut (`cut`).
- Weight snapshots for backtracking (`Snapshot`): bitwise, then the
  slots that carry the rate agree with the new rate.
- Messages printed the way Keras prints them (`say`).
"""

import math
import warnings
from collections import deque

import keras
import numpy as np

from keras_lr import _checks
from keras_lr import _keras_internals as internals
from keras_lr import snapshot
from keras_lr.callbacks import _rate_slots

MODES = ("auto", "min", "max")
THRESHOLD_MODES = ("rel", "abs")


def say(message: str) -> None:
    """Prints as Keras' callbacks do: to stdout when interactive logging
    is on, else to absl logging (`keras.config.disable_interactive_logging`
    sends Keras' own lines there too)."""
    if keras.config.is_interactive_logging_enabled():
        print(message, flush=True)
    else:
        from absl import logging

        logging.info(message)


class MonitoredValue:
    """Reads a callback's monitored value from the epoch logs.

    A missing key warns once per `fit` (Keras repeats it every epoch) and
    reads `None`: the callback then does nothing that epoch.
    """

    def __init__(self, owner: str, monitor: str):
        if not isinstance(monitor, str):
            raise TypeError(
                "Argument `monitor` must be a string (a key of the epoch "
                f"logs). Received: monitor={monitor!r}"
            )
        self.owner = owner
        self.monitor = monitor
        self.warned = False

    def reset(self) -> None:
        self.warned = False

    def read(self, logs) -> float | None:
        logs = logs or {}
        if self.monitor in logs:
            return float(logs[self.monitor])
        if not self.warned:
            warnings.warn(
                f"{self.owner} is conditioned on metric `{self.monitor}`, "
                "which is not available; it does nothing. Available "
                f"metrics are: {', '.join(sorted(logs))}.",
                stacklevel=4,
            )
            self.warned = True
        return None


def _metric_direction(model, name: str) -> str | None:
    """`"max"` or `"min"` for a compiled metric called `name`, else None."""
    found = None
    for metric in getattr(model, "metrics", None) or []:
        # Keras' compile containers hold the user's metrics.
        inner = getattr(metric, "metrics", None)
        for candidate in inner if isinstance(inner, list) else [metric]:
            if candidate.name == name:
                direction = internals.metric_direction(candidate)
                if direction is not None:
                    found = "max" if direction == "up" else "min"
    return found


def resolve_mode(mode: str, monitor: str, model=None) -> str:
    """Keras 3's rule for `mode="auto"`.

    `loss` (and `val_loss`) is minimized; another name is looked up among
    the model's compiled metrics, each of which knows whether it should
    go up (`val_auc`, accuracies) or down; a name Keras cannot place is
    an error, as in Keras.
    """
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    direction = "min" if name == "loss" else None
    if model is not None:
        direction = _metric_direction(model, name) or direction
    if direction is None:
        raise ValueError(
            f"Argument `mode='auto'` cannot tell whether monitor={monitor!r} "
            "should be maximized or minimized: it is neither the loss nor a "
            "metric the model was compiled with. Pass mode='max' or "
            "mode='min'."
        )
    return direction


class PlateauTracker:
    """Counts evaluations without improvement of a (smoothed) metric.

    Args:
        mode: `"min"`, `"max"` or `"auto"` (decided by `resolve` before
            the first value).
        patience: A Python int >= 0. Evaluations without improvement after
            which `update` returns `True`.
        min_delta: A Python float >= 0. Improvement threshold.
        threshold_mode: `"rel"` (improve on `best * (1 -/+ min_delta)`) or
            `"abs"` (improve on `best -/+ min_delta`, Keras' rule).
        cooldown: A Python int >= 0. Evaluations to wait after an action
            before counting again.
        smoothing: A Python int >= 1. The value compared is the mean of the
            last `smoothing` evaluations (1: the raw value).
    """

    def __init__(
        self,
        mode: str = "min",
        patience: int = 10,
        min_delta: float = 0.0,
        threshold_mode: str = "abs",
        cooldown: int = 0,
        smoothing: int = 1,
    ):
        _checks.check_choice("mode", mode, MODES)
        _checks.check_non_negative_int("patience", patience)
        _checks.check_non_negative("min_delta", min_delta)
        _checks.check_choice("threshold_mode", threshold_mode, THRESHOLD_MODES)
        _checks.check_non_negative_int("cooldown", cooldown)
        _checks.check_positive_int("smoothing", smoothing)
        self.requested_mode = mode
        self.patience = patience
        self.min_delta = min_delta
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.smoothing = smoothing
        self.reset()

    def _set_mode(self, mode: str | None) -> None:
        self.mode = mode
        self.best = None if mode is None else (
            math.inf if mode == "min" else -math.inf
        )

    def resolve(self, monitor: str, model) -> None:
        """Decides `mode="auto"` (Keras 3's rule, `resolve_mode`) before
        the first value, when the model's compiled metrics exist, as Keras
        does at the first epoch end. Does nothing once decided."""
        if self.mode is None:
            self._set_mode(resolve_mode(self.requested_mode, monitor, model))

    def reset(self) -> None:
        self._set_mode(
            None if self.requested_mode == "auto" else self.requested_mode
        )
        self.wait = 0
        self.cooldown_counter = 0
        self.history: deque[float] = deque(maxlen=self.smoothing)

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def smoothed(self, value: float) -> float:
        """Adds `value` to the window and returns the window's mean."""
        self.history.append(float(value))
        return sum(self.history) / len(self.history)

    def is_improvement(self, value: float) -> bool:
        if not math.isfinite(self.best):
            return math.isfinite(value)
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return value < self.best * (1.0 - self.min_delta)
            return value < self.best - self.min_delta
        if self.threshold_mode == "rel":
            return value > self.best * (1.0 + self.min_delta)
        return value > self.best + self.min_delta

    def update(self, value: float) -> bool:
        """Records one evaluation; `True` when it is time to act."""
        if self.mode is None:
            raise RuntimeError(
                "PlateauTracker(mode='auto') needs `resolve(monitor, model)` "
                "before its first value."
            )
        value = self.smoothed(value)
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.is_improvement(value):
            self.best = value
            self.wait = 0
            return False
        if self.in_cooldown:
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.wait = 0
            self.cooldown_counter = self.cooldown
            return True
        return False

    def get_state(self) -> dict:
        return {
            "mode": self.mode,
            "best": self.best,
            "wait": self.wait,
            "cooldown_counter": self.cooldown_counter,
            "history": list(self.history),
        }

    def set_state(self, state: dict) -> None:
        self._set_mode(state.get("mode", self.mode))
        best = state["best"]
        self.best = None if best is None else float(best)
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.history = deque(
            (float(v) for v in state["history"]), maxlen=self.smoothing
        )


def cut(controller, factor: float, min_lr: float) -> float | None:
    """Multiplies the rate by `factor`, not below `min_lr`.

    For a float rate this is Keras' `ReduceLROnPlateau` to the bit. For a
    schedule, `min_lr` bounds the rate at the moment of the cut: the
    factor is clamped so that the next step's rate is
    `max(rate * factor, min_lr)`; the schedule may still decay below it
    afterwards. Returns the new rate, or `None` when the rate is already
    at or below `min_lr` (nothing is changed).
    """
    current = controller.current()
    # Compared in float32, as the optimizer holds it (Keras does the same).
    if not current > np.float32(min_lr) or current <= 0.0:
        return None
    return controller.multiply(factor, floor=float(min_lr))


class Snapshot:
    """Host copies of `model.weights` and of the optimizer's state (see
    `keras_lr.snapshot.optimizer_state`), for rolling back, with the rate
    in force when they were taken.

    Restoring puts the copies back bit for bit, then rescales the slots
    that carry the rate (SGD's velocity, ...: see
    `keras_lr.callbacks._rate_slots`) to the rate of the next step, so a
    rollback followed by a cut moves at the new speed from its first step.

    Args:
        model: A compiled model whose optimizer is built.
        rate: A Python float. The rate in force (the rate controller's
            `current()`), which the slots were built with.
    """

    def __init__(self, model, rate: float):
        self.weights = snapshot.take(model.weights)
        self.optimizer = snapshot.take(snapshot.optimizer_state(model))
        self.rate = float(rate)

    @classmethod
    def from_arrays(cls, arrays: dict) -> "Snapshot":
        """A snapshot rebuilt from `to_arrays()` (a restored backup). A
        backup written before the rate was saved gives `rate=None`: its
        slots are restored as saved."""
        copy = cls.__new__(cls)
        copy.weights = list(arrays["weights"])
        copy.optimizer = list(arrays["optimizer"])
        rate = arrays.get("rate")
        copy.rate = None if not rate else float(np.asarray(rate[0]))
        return copy

    def to_arrays(self) -> dict:
        arrays = {"weights": self.weights, "optimizer": self.optimizer}
        if self.rate is not None:
            arrays["rate"] = [np.asarray(self.rate, "float64")]
        return arrays

    def restore(self, model, rate: float) -> None:
        """Assigns the copies back, bit for bit, then makes the slots that
        carry the rate agree with `rate`, the rate of the next step."""
        snapshot.put(model.weights, self.weights)
        snapshot.put(snapshot.optimizer_state(model), self.optimizer)
        if self.rate is not None:
            _rate_slots.rescale(model.optimizer, self.rate, rate)
