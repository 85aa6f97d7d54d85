"""Plateau detection shared by the plateau and batch-size callbacks.

Counting follows Keras: an action fires when the number of consecutive
evaluations without improvement reaches `patience` (PyTorch fires when it
exceeds `patience`, i.e. one evaluation later).
"""

import math
from collections import deque

from keras_lr import _checks

MODES = ("auto", "min", "max")
THRESHOLD_MODES = ("rel", "abs")


def resolve_mode(mode: str, monitor: str) -> str:
    """Keras' rule for `mode="auto"`: accuracy-like keys are maximized."""
    if mode != "auto":
        return mode
    return (
        "max" if ("acc" in monitor or monitor.startswith("fmeasure")) else "min"
    )


class PlateauTracker:
    """Counts evaluations without improvement of a (smoothed) metric.

    Args:
        mode: `"min"` or `"max"`.
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
        _checks.check_choice("mode", mode, ("min", "max"))
        _checks.check_non_negative_int("patience", patience)
        _checks.check_non_negative("min_delta", min_delta)
        _checks.check_choice("threshold_mode", threshold_mode, THRESHOLD_MODES)
        _checks.check_non_negative_int("cooldown", cooldown)
        _checks.check_positive_int("smoothing", smoothing)
        self.mode = mode
        self.patience = patience
        self.min_delta = min_delta
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.smoothing = smoothing
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
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
            "best": self.best,
            "wait": self.wait,
            "cooldown_counter": self.cooldown_counter,
            "history": list(self.history),
        }

    def set_state(self, state: dict) -> None:
        self.best = float(state["best"])
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.history = deque(
            (float(v) for v in state["history"]), maxlen=self.smoothing
        )
