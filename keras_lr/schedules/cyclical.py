"""Cyclical learning rates (Smith, 2017)."""

import keras
from keras import ops

from keras_lr import _backend
from keras_lr import _checks
from keras_lr.schedules import _base

MODES = ("triangular", "triangular2", "exp_range")
SCALE_MODES = ("cycle", "iterations")


def cyclical_learning_rate(
    step,
    initial_learning_rate,
    maximal_learning_rate,
    step_size,
    step_size_down=None,
    mode="triangular",
    gamma=1.0,
    scale_fn=None,
    scale_mode="cycle",
):
    """Triangular wave between the two rates, its height scaled per mode.

    Matches PyTorch's `CyclicLR` at every step. A custom `scale_fn` takes
    the cycle number (from 1) or the step, as `scale_mode` says, and must be
    written with `keras.ops`.
    """
    base = _base.learning_rate_tensor(initial_learning_rate)
    dtype = base.dtype
    # The position in the cycle is computed in float64: in float32,
    # `step / total` keeps only ~7 digits and drifts after ~1e5 steps.
    step = _base.step_as(step, _backend.float64())
    up = float(step_size)
    down = float(step_size if step_size_down is None else step_size_down)
    total = up + down
    rise = up / total
    cycle = ops.floor(1.0 + step / total)
    x = 1.0 + step / total - cycle
    position = ops.where(x <= rise, x / rise, (x - 1.0) / (rise - 1.0))
    if scale_fn is not None:
        argument = cycle if scale_mode == "cycle" else step
        scale = ops.cast(scale_fn(ops.cast(argument, dtype)), dtype)
    elif mode == "triangular":
        scale = ops.ones((), dtype)
    elif mode == "triangular2":
        scale = ops.cast(ops.power(0.5, cycle - 1.0), dtype)
    else:
        scale = ops.cast(ops.power(float(gamma), step), dtype)
    peak = _base.constant(maximal_learning_rate, dtype)
    # Exactly `base` at the troughs and `peak` at the crests (scale 1),
    # unlike `base + (peak - base) * weight`.
    return _base.lerp(base, peak, ops.cast(position, dtype) * scale)


@keras.saving.register_keras_serializable(package="keras_lr")
class CyclicalLearningRate(_base.LearningRateSchedule):
    """A `LearningRateSchedule` that cycles between two rates.

    The rate climbs linearly from `initial_learning_rate` to
    `maximal_learning_rate` over `step_size` steps (a half cycle), then
    falls back over `step_size_down` steps, and repeats. Values equal
    PyTorch's `torch.optim.lr_scheduler.CyclicLR` at every step.

    ```python
    def learning_rate(step):
        total = step_size + step_size_down
        cycle = floor(1 + step / total)
        x = 1 + step / total - cycle                   # position in cycle
        rise = step_size / total
        wave = x / rise if x <= rise else (x - 1) / (rise - 1)
        scale = {"triangular": 1,
                 "triangular2": 0.5 ** (cycle - 1),
                 "exp_range": gamma ** step}[mode]
        return initial + (maximal - initial) * wave * scale
    ```

    Smith advises a half cycle of 2 to 10 times the steps of an epoch, and
    reading both rates off a range test (`keras_lr.find_learning_rate`).

    Args:
        initial_learning_rate: A Python float, a scalar tensor or a
            `keras.Variable`, >= 0 (read at every call; an int counts as
            a float). The lower rate.
        maximal_learning_rate: The same kinds, > `initial_learning_rate`.
        step_size: A Python number > 0. Steps of the rising half cycle.
        mode: A string, `"triangular"`, `"triangular2"` (height halves every
            cycle) or `"exp_range"` (height times `gamma ** step`).
        gamma: A Python float in (0, 1]. Decay factor for `"exp_range"`.
        step_size_down: A Python number > 0 or `None` (same as `step_size`).
            Steps of the falling half cycle.
        scale_fn: `None`, or a registered serializable callable (see
            `keras.saving.register_keras_serializable`) of one tensor written
            with `keras.ops`; it replaces `mode` and survives `model.save`.
        scale_mode: `"cycle"` or `"iterations"`: what `scale_fn` receives.
        name: A string. Name scope of the operations.

    Returns:
        A scalar tensor of the dtype of `initial_learning_rate`.

    Raises:
        ValueError: for `maximal_learning_rate <= initial_learning_rate`,
            non-positive step sizes, an unknown mode or `gamma` out of range.
        TypeError: for a `scale_fn` that is not callable.

    Example:

    ```python
    schedule = keras_lr.schedules.CyclicalLearningRate(
        1e-4, 1e-2, step_size=2000, mode="triangular2"
    )
    ```

    Reference:
        Smith, "Cyclical Learning Rates for Training Neural Networks",
        WACV 2017.
    """

    def __init__(
        self,
        initial_learning_rate,
        maximal_learning_rate,
        step_size,
        mode="triangular",
        gamma=1.0,
        step_size_down=None,
        scale_fn=None,
        scale_mode="cycle",
        name="CyclicalLearningRate",
    ):
        super().__init__()
        _checks.check_non_negative_rate(
            "initial_learning_rate", initial_learning_rate
        )
        maximal = _checks.rate_value(
            "maximal_learning_rate", maximal_learning_rate
        )
        initial = _checks.rate_value(
            "initial_learning_rate", initial_learning_rate
        )
        if maximal is not None and initial is not None:
            # Python numbers are quoted as given; tensors by their value.
            _checks.check_greater(
                "maximal_learning_rate",
                maximal_learning_rate
                if _checks.is_real(maximal_learning_rate)
                else maximal,
                "initial_learning_rate",
                initial_learning_rate
                if _checks.is_real(initial_learning_rate)
                else initial,
            )
        _checks.check_positive("step_size", step_size)
        if step_size_down is not None:
            _checks.check_positive("step_size_down", step_size_down)
        _checks.check_choice("mode", mode, MODES)
        _checks.check_real("gamma", gamma)
        if not 0.0 < gamma <= 1.0:
            raise ValueError(
                f"Argument `gamma` must be in (0, 1]. Received: gamma={gamma!r}"
            )
        if isinstance(scale_fn, dict):
            scale_fn = keras.saving.deserialize_keras_object(scale_fn)
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(
                "Argument `scale_fn` must be a callable or None. Received: "
                f"scale_fn={scale_fn!r} (of type {type(scale_fn).__name__})"
            )
        _checks.check_choice("scale_mode", scale_mode, SCALE_MODES)
        self.initial_learning_rate = initial_learning_rate
        self.maximal_learning_rate = maximal_learning_rate
        self.step_size = step_size
        self.mode = mode
        self.gamma = gamma
        self.step_size_down = step_size_down
        self.scale_fn = scale_fn
        self.scale_mode = scale_mode
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name):
            return cyclical_learning_rate(
                step,
                self.initial_learning_rate,
                self.maximal_learning_rate,
                self.step_size,
                self.step_size_down,
                self.mode,
                self.gamma,
                self.scale_fn,
                self.scale_mode,
            )

    def get_config(self):
        scale_fn = self.scale_fn
        if scale_fn is not None:
            scale_fn = keras.saving.serialize_keras_object(scale_fn)
        return {
            "initial_learning_rate": _base.config_value(
                self.initial_learning_rate
            ),
            "maximal_learning_rate": _base.config_value(
                self.maximal_learning_rate
            ),
            "step_size": self.step_size,
            "mode": self.mode,
            "gamma": self.gamma,
            "step_size_down": self.step_size_down,
            "scale_fn": scale_fn,
            "scale_mode": self.scale_mode,
            "name": self.name,
        }
