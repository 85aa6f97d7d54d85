"""The rates of a range test's sweep, and its configuration held once."""

import dataclasses

import numpy as np

from keras_lr import _checks

MODES = ("exponential", "linear")
MIN_STEPS = 10


def sweep_learning_rates(
    start_lr: float, end_lr: float, num_steps: int, mode: str = "exponential"
) -> np.ndarray:
    """The rate of each step of a sweep, in float64.

    ```python
    t = i / (num_steps - 1)                        # i = 0 .. num_steps - 1
    lr = start_lr * (end_lr / start_lr) ** t       # "exponential"
    lr = start_lr + (end_lr - start_lr) * t        # "linear"
    ```
    """
    t = np.arange(num_steps, dtype=np.float64) / (num_steps - 1)
    if mode == "exponential":
        return start_lr * (end_lr / start_lr) ** t
    return start_lr + (end_lr - start_lr) * t


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Everything a range test is configured by, validated on creation.

    `keras_lr.callbacks.LRRangeTest` holds one and reads its arguments from
    it; `to_dict()` is the `config` of the `keras_lr.RangeTestResult`.

    Args:
        start_lr: A Python float > 0. The rate of the first step.
        end_lr: A Python float > `start_lr`. The rate of step
            `num_steps - 1`.
        num_steps: An integer >= 10. Length of the sweep in steps.
        mode: `"exponential"` (default) or `"linear"`.
        beta: A Python float in [0, 1). Smoothing of the loss curve.
        diverge_threshold: A Python float > 1. Stop when the smoothed loss
            exceeds this multiple of its best value.

    Raises:
        ValueError: on an argument out of its range.
        TypeError: on an argument of the wrong type.
    """

    start_lr: float = 1e-7
    end_lr: float = 10.0
    num_steps: int = 100
    mode: str = "exponential"
    beta: float = 0.98
    diverge_threshold: float = 4.0

    def __post_init__(self):
        _checks.check_positive("start_lr", self.start_lr)
        _checks.check_positive("end_lr", self.end_lr)
        _checks.check_greater("end_lr", self.end_lr, "start_lr", self.start_lr)
        _checks.check_int("num_steps", self.num_steps)
        if self.num_steps < MIN_STEPS:
            raise ValueError(
                f"Argument `num_steps` must be >= {MIN_STEPS}: a shorter "
                "sweep says nothing about the curve. Received: "
                f"num_steps={self.num_steps!r}"
            )
        _checks.check_choice("mode", self.mode, MODES)
        _checks.check_real("beta", self.beta)
        if not 0 <= self.beta < 1:
            raise ValueError(
                "Argument `beta` must be in [0, 1). Received: "
                f"beta={self.beta!r}"
            )
        _checks.check_real("diverge_threshold", self.diverge_threshold)
        if not self.diverge_threshold > 1:
            raise ValueError(
                "Argument `diverge_threshold` must be > 1. Received: "
                f"diverge_threshold={self.diverge_threshold!r}"
            )

    def learning_rates(self) -> np.ndarray:
        """`sweep_learning_rates` of this sweep (float64)."""
        return sweep_learning_rates(
            self.start_lr, self.end_lr, self.num_steps, self.mode
        )

    def table(self, multiplier: float = 1.0) -> np.ndarray:
        """The float32 curve that makes the optimizer run this sweep.

        The rate controller applies its multiplier on top of a curve
        (`float32(float64(value) * multiplier)`), so the table is divided by
        it first; with the usual multiplier 1.0 every step's rate is the
        float32 nearest to `learning_rates()` exactly.
        """
        return (self.learning_rates() / float(multiplier)).astype(np.float32)

    def to_dict(self) -> dict:
        """JSON-native arguments, as `keras_lr.RangeTestResult.config`."""
        return {
            "start_lr": float(self.start_lr),
            "end_lr": float(self.end_lr),
            "num_steps": int(self.num_steps),
            "mode": self.mode,
            "beta": float(self.beta),
            "diverge_threshold": float(self.diverge_threshold),
        }
