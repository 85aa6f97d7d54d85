"""Cosine decay (with optional linear warmup) and cosine decay with restarts."""

import math

import keras
from keras import ops

from keras_lr import _checks
from keras_lr.schedules import _base


def _cosine_factor(fraction, alpha):
    """`(1 - alpha) * 0.5 * (1 + cos(pi * fraction)) + alpha`.

    Computed as a line from `alpha` to 1 weighted by the cosine, so that it
    is exactly 1 at `fraction == 0` and exactly `alpha` at `fraction == 1`.
    """
    cosine = 0.5 * (1.0 + ops.cos(math.pi * fraction))
    return _base.lerp(alpha, 1.0, cosine)


def cosine_decay(
    step,
    initial_learning_rate,
    decay_steps,
    alpha=0.0,
    warmup_target=None,
    warmup_steps=0,
):
    """Keras' `CosineDecay`: optional linear warmup, then cosine decay."""
    lr = _base.learning_rate_tensor(initial_learning_rate)
    dtype = lr.dtype
    step = _base.step_as(step, dtype)
    decay = _base.constant(decay_steps, dtype)
    alpha = _base.constant(alpha, dtype)
    if warmup_target is None:
        fraction = ops.minimum(step, decay) / decay
        return lr * _cosine_factor(fraction, alpha)
    target = _base.constant(warmup_target, dtype)
    warmup = _base.constant(warmup_steps, dtype)
    step = ops.minimum(step, decay + warmup)
    # max(warmup, 1) keeps the unused branch finite when warmup_steps == 0.
    warming = _base.lerp(lr, target, step / ops.maximum(warmup, 1.0))
    decaying = target * _cosine_factor((step - warmup) / decay, alpha)
    return ops.where(step < warmup, warming, decaying)


def cosine_decay_restarts(
    step,
    initial_learning_rate,
    first_decay_steps,
    t_mul=2.0,
    m_mul=1.0,
    alpha=0.0,
):
    """SGDR: cosine periods growing by `t_mul`, peaks scaled by `m_mul`."""
    lr = _base.learning_rate_tensor(initial_learning_rate)
    dtype = lr.dtype
    fraction = _base.step_as(step, dtype) / ops.cast(first_decay_steps, dtype)
    alpha = _base.constant(alpha, dtype)
    if t_mul == 1.0:
        restart = ops.floor(fraction)
        within = fraction - restart
    else:
        t = _base.constant(t_mul, dtype)
        # Period i lasts t**i; restart i begins after (1 - t**i) / (1 - t).
        restart = ops.floor(ops.log(1.0 - fraction * (1.0 - t)) / ops.log(t))
        start = (1.0 - ops.power(t, restart)) / (1.0 - t)
        within = (fraction - start) / ops.power(t, restart)
    peak = ops.power(_base.constant(m_mul, dtype), restart)
    cosine = 0.5 * peak * (1.0 + ops.cos(math.pi * within))
    return lr * _base.lerp(alpha, 1.0, cosine)


@keras.saving.register_keras_serializable(package="keras_lr")
class CosineDecay(_base.LearningRateSchedule):
    """A `LearningRateSchedule` that uses a cosine decay with optional warmup.

    A drop-in replacement for `keras.optimizers.schedules.CosineDecay`.
    When `warmup_target` is set, the rate first rises linearly from
    `initial_learning_rate` to `warmup_target` over `warmup_steps`, then
    decays over `decay_steps` more steps (Keras counts `decay_steps` after
    the warmup; optax counts the warmup inside). For warmup in front of any
    other schedule, wrap it in `keras_lr.schedules.LinearWarmup`.

    ```python
    def decayed_learning_rate(step):
        if warmup_target is not None and step < warmup_steps:
            fraction = step / warmup_steps
            return initial_learning_rate + fraction * (
                warmup_target - initial_learning_rate)
        peak = initial_learning_rate if warmup_target is None else warmup_target
        step = min(step - warmup_steps, decay_steps)
        cosine = 0.5 * (1 + cos(pi * step / decay_steps))
        return peak * ((1 - alpha) * cosine + alpha)
    ```

    Args:
        initial_learning_rate: A Python float, a scalar tensor or a
            `keras.Variable` (read at every call; an int counts as a
            float). The rate at step 0.
        decay_steps: A Python number > 0. Steps to decay over.
        alpha: A Python float in [0, 1]. Final rate as a fraction of the
            peak rate.
        name: A string. Name scope of the operations.
        warmup_target: A Python float, a scalar tensor, a `keras.Variable`
            or `None`. The rate reached at the end
            of the warmup; `None` skips the warmup.
        warmup_steps: A Python number >= 0. Steps to warm up over.

    Returns:
        A scalar tensor of the dtype of `initial_learning_rate`.

    Raises:
        ValueError: for non-positive `decay_steps`, negative rates or
            `warmup_steps`, or `alpha` outside [0, 1].

    Example:

    ```python
    schedule = keras_lr.schedules.CosineDecay(
        0.0, decay_steps=9000, warmup_target=0.1, warmup_steps=1000
    )
    ```

    Reference:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
        Restarts", ICLR 2017.
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        alpha=0.0,
        name="CosineDecay",
        warmup_target=None,
        warmup_steps=0,
    ):
        super().__init__()
        _checks.check_non_negative_rate(
            "initial_learning_rate", initial_learning_rate
        )
        _checks.check_positive("decay_steps", decay_steps)
        _checks.check_closed_interval("alpha", alpha, 0.0, 1.0)
        if warmup_target is not None:
            _checks.check_non_negative_rate("warmup_target", warmup_target)
        _checks.check_non_negative("warmup_steps", warmup_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        with keras.name_scope(self.name):
            return cosine_decay(
                step,
                self.initial_learning_rate,
                self.decay_steps,
                self.alpha,
                self.warmup_target,
                self.warmup_steps,
            )

    def get_config(self):
        return {
            "initial_learning_rate": _base.config_value(
                self.initial_learning_rate
            ),
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": _base.config_value(self.warmup_target),
            "warmup_steps": self.warmup_steps,
        }


@keras.saving.register_keras_serializable(package="keras_lr")
class CosineDecayRestarts(_base.LearningRateSchedule):
    """A `LearningRateSchedule` that uses cosine decay with warm restarts.

    A drop-in replacement for `keras.optimizers.schedules.CosineDecayRestarts`.
    The first period decays from 1 to `alpha` (times the initial rate) over
    `first_decay_steps`; each following period lasts `t_mul` times longer and
    starts from `m_mul` times the previous peak.

    ```python
    def decayed_learning_rate(step):
        i, fraction = period_index_and_fraction(step)   # geometric periods
        cosine = 0.5 * m_mul ** i * (1 + cos(pi * fraction))
        return initial_learning_rate * ((1 - alpha) * cosine + alpha)
    ```

    Args:
        initial_learning_rate: A Python float, a scalar tensor or a
            `keras.Variable` (read at every call; an int counts as a
            float). The rate at step 0.
        first_decay_steps: A Python number > 0. Length of the first period.
        t_mul: A Python float >= 1. Growth factor of the period length.
        m_mul: A Python float >= 0. Factor applied to each new peak.
        alpha: A Python float in [0, 1]. Minimum rate as a fraction of the
            initial rate.
        name: A string. Name scope of the operations.

    Returns:
        A scalar tensor of the dtype of `initial_learning_rate`.

    Raises:
        ValueError: for non-positive `first_decay_steps`, `t_mul < 1`, a
            negative `m_mul` or rate, or `alpha` outside [0, 1].

    Example:

    ```python
    schedule = keras_lr.schedules.CosineDecayRestarts(
        0.1, first_decay_steps=1000
    )
    ```

    Reference:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
        Restarts", ICLR 2017.
    """

    def __init__(
        self,
        initial_learning_rate,
        first_decay_steps,
        t_mul=2.0,
        m_mul=1.0,
        alpha=0.0,
        name="SGDRDecay",
    ):
        super().__init__()
        _checks.check_non_negative_rate(
            "initial_learning_rate", initial_learning_rate
        )
        _checks.check_positive("first_decay_steps", first_decay_steps)
        _checks.check_real("t_mul", t_mul)
        if t_mul < 1:
            # Shrinking periods sum to a finite horizon, after which the
            # restart index is undefined (Keras returns NaN there).
            raise ValueError(
                f"Argument `t_mul` must be >= 1. Received: t_mul={t_mul!r}"
            )
        _checks.check_non_negative("m_mul", m_mul)
        _checks.check_closed_interval("alpha", alpha, 0.0, 1.0)
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self.t_mul = t_mul
        self.m_mul = m_mul
        self.alpha = alpha
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name):
            return cosine_decay_restarts(
                step,
                self.initial_learning_rate,
                self.first_decay_steps,
                self.t_mul,
                self.m_mul,
                self.alpha,
            )

    def get_config(self):
        return {
            "initial_learning_rate": _base.config_value(
                self.initial_learning_rate
            ),
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self.t_mul,
            "m_mul": self.m_mul,
            "alpha": self.alpha,
            "name": self.name,
        }
