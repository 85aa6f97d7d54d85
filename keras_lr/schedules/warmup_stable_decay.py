"""Warmup-stable-decay (WSD): warm up, hold the peak, then cool down."""

import math

import keras
from keras import ops

from keras_lr import _checks
from keras_lr.schedules import _base

DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


def cooldown_factor(t, shape: str = "1-sqrt"):
    """The fraction of the way from the end rate to the peak, over a cooldown.

    `t` is the fraction of the cooldown done (clipped to [0, 1]); the factor
    is exactly 1 at `t == 0` and exactly 0 at `t == 1`, falling in between:

    ```python
    linear: 1 - t
    cosine: 0.5 * (1 + cos(pi * t))
    1-sqrt: 1 - sqrt(t)
    ```

    A rate cooling from `peak` to `end` is then
    `end * (1 - factor) + peak * factor`.

    Args:
        t: A Python float or a scalar tensor (an integer counts as a float).
            The fraction of the cooldown done.
        shape: One of `"linear"`, `"cosine"`, `"1-sqrt"`.

    Returns:
        A tensor of the float dtype of `t` (`floatx()` for a Python number
        or an integer tensor).

    Raises:
        ValueError: if `shape` is not one of the shapes above.
    """
    _checks.check_choice("shape", shape, DECAY_SHAPES)
    t = ops.convert_to_tensor(t)
    dtype = keras.backend.standardize_dtype(t.dtype)
    if not keras.backend.is_float_dtype(dtype):
        t = ops.cast(t, keras.config.floatx())
    t = ops.clip(t, 0.0, 1.0)
    if shape == "linear":
        factor = 1.0 - t
    elif shape == "cosine":
        factor = 0.5 * (1.0 + ops.cos(math.pi * t))
    else:
        factor = 1.0 - ops.sqrt(t)
    # XLA's cos and sqrt are approximations: pin both ends so that a cooldown
    # starts at exactly the peak and ends at exactly the end rate.
    factor = ops.where(t <= 0.0, 1.0, factor)
    return ops.where(t >= 1.0, 0.0, factor)


def _length_or_one(length):
    """`length`, or 1 where it is 0: keeps the unused branch finite."""
    return ops.where(length > 0.0, length, 1.0)


def warmup_stable_decay(
    step,
    peak_learning_rate,
    warmup_steps,
    stable_steps,
    decay_steps,
    initial_learning_rate=0.0,
    end_learning_rate=0.0,
    decay_shape="1-sqrt",
):
    """Linear warmup, a constant peak, then a cooldown of `decay_shape`."""
    peak = _base.learning_rate_tensor(peak_learning_rate)
    dtype = peak.dtype
    start = _base.constant(initial_learning_rate, dtype)
    end = _base.constant(end_learning_rate, dtype)
    step = _base.step_as(step, dtype)
    warmup = _base.constant(warmup_steps, dtype)
    decay = _base.constant(decay_steps, dtype)
    decay_start = warmup + _base.constant(stable_steps, dtype)
    decay_end = decay_start + decay
    warming = _base.lerp(
        start, peak, ops.clip(step / _length_or_one(warmup), 0.0, 1.0)
    )
    done = (step - decay_start) / _length_or_one(decay)
    # Exactly 1 from the last step on, even where XLA divides by
    # multiplying with a rounded reciprocal.
    done = ops.where(step >= decay_end, 1.0, done)
    decaying = _base.lerp(end, peak, cooldown_factor(done, decay_shape))
    return ops.where(
        step < warmup,
        warming,
        ops.where(step < decay_start, peak, decaying),
    )


@keras.saving.register_keras_serializable(package="keras_lr")
class WarmupStableDecay(_base.LearningRateSchedule):
    """A `LearningRateSchedule` that warms up, holds, then cools down (WSD).

    The rate rises linearly from `initial_learning_rate` to
    `peak_learning_rate` over `warmup_steps`, stays at the peak for
    `stable_steps`, then falls to `end_learning_rate` over `decay_steps`
    along `decay_shape`, and holds `end_learning_rate` from then on. Each
    length counts after the previous phase (as Keras' `CosineDecay` counts
    `decay_steps` after the warmup), so the schedule ends at step
    `warmup_steps + stable_steps + decay_steps`. Any length may be 0.

    Since the stable phase does not depend on the training length, a run
    can be continued from a checkpoint taken before the cooldown, and a
    short cooldown (10-20% of the steps) matches a cosine schedule tuned to
    the full length (Hägele et al.); `"1-sqrt"` is the shape they found
    best.

    ```python
    def learning_rate(step):
        if step < warmup_steps:
            t = step / warmup_steps
            return initial_learning_rate * (1 - t) + peak_learning_rate * t
        if step < warmup_steps + stable_steps:
            return peak_learning_rate
        t = min((step - warmup_steps - stable_steps) / decay_steps, 1)
        factor = {"linear": 1 - t,
                  "cosine": 0.5 * (1 + cos(pi * t)),
                  "1-sqrt": 1 - sqrt(t)}[decay_shape]
        return end_learning_rate * (1 - factor) + peak_learning_rate * factor
    ```

    The names follow Keras: `initial_learning_rate` is the rate at step 0
    and `end_learning_rate` the final rate, as in `PolynomialDecay`;
    `warmup_steps` and `decay_steps` as in `CosineDecay`. The peak comes
    first because it is the one rate every WSD run sets.

    Args:
        peak_learning_rate: A Python float, a scalar tensor or a
            `keras.Variable` (read at every call; an int counts as a
            float), >= 0. The rate reached at the end of the warmup and
            held through the stable phase.
        warmup_steps: A Python number >= 0. Length of the linear warmup.
        stable_steps: A Python number >= 0. Length of the constant phase.
        decay_steps: A Python number >= 0. Length of the cooldown.
        initial_learning_rate: The same kinds as `peak_learning_rate`,
            >= 0. The rate at step 0 (when `warmup_steps > 0`).
        end_learning_rate: The same kinds, >= 0. The rate at the end of the
            cooldown and after it.
        decay_shape: One of `"linear"`, `"cosine"`, `"1-sqrt"`. The shape
            of the cooldown (see `cooldown_factor`).
        name: A string. Name scope of the operations.

    Returns:
        A scalar tensor of the dtype of `peak_learning_rate`.

    Raises:
        ValueError: for a negative length or rate, or an unknown
            `decay_shape`.
        TypeError: for a length that is not a Python number.

    Example:

    ```python
    schedule = keras_lr.schedules.WarmupStableDecay(
        1e-3, warmup_steps=1000, stable_steps=7000, decay_steps=2000
    )
    optimizer = keras.optimizers.AdamW(learning_rate=schedule)
    ```

    Reference:
        Hu et al., "MiniCPM: Unveiling the Potential of Small Language
        Models with Scalable Training Strategies", 2024.
        Hägele et al., "Scaling Laws and Compute-Optimal Training Beyond
        Fixed Training Durations", NeurIPS 2024.
    """

    def __init__(
        self,
        peak_learning_rate,
        warmup_steps,
        stable_steps,
        decay_steps,
        initial_learning_rate=0.0,
        end_learning_rate=0.0,
        decay_shape="1-sqrt",
        name="WarmupStableDecay",
    ):
        super().__init__()
        _checks.check_non_negative_rate(
            "peak_learning_rate", peak_learning_rate
        )
        _checks.check_non_negative("warmup_steps", warmup_steps)
        _checks.check_non_negative("stable_steps", stable_steps)
        _checks.check_non_negative("decay_steps", decay_steps)
        _checks.check_non_negative_rate(
            "initial_learning_rate", initial_learning_rate
        )
        _checks.check_non_negative_rate("end_learning_rate", end_learning_rate)
        _checks.check_choice("decay_shape", decay_shape, DECAY_SHAPES)
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps
        self.stable_steps = stable_steps
        self.decay_steps = decay_steps
        self.initial_learning_rate = initial_learning_rate
        self.end_learning_rate = end_learning_rate
        self.decay_shape = decay_shape
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name):
            return warmup_stable_decay(
                step,
                self.peak_learning_rate,
                self.warmup_steps,
                self.stable_steps,
                self.decay_steps,
                self.initial_learning_rate,
                self.end_learning_rate,
                self.decay_shape,
            )

    def get_config(self):
        return {
            "peak_learning_rate": _base.config_value(self.peak_learning_rate),
            "warmup_steps": self.warmup_steps,
            "stable_steps": self.stable_steps,
            "decay_steps": self.decay_steps,
            "initial_learning_rate": _base.config_value(
                self.initial_learning_rate
            ),
            "end_learning_rate": _base.config_value(self.end_learning_rate),
            "decay_shape": self.decay_shape,
            "name": self.name,
        }
