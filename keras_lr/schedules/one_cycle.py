"""The 1cycle policy (Smith, 2018), as PyTorch's `OneCycleLR` computes it."""

import math

import keras
from keras import ops

from keras_lr import _checks
from keras_lr.schedules import _base

ANNEAL_STRATEGIES = ("cos", "linear")


def one_cycle_phases(
    total_steps: int, pct_start: float, three_phase: bool
) -> list[tuple[float, float]]:
    """(first step, last step) of each phase, as PyTorch places them."""
    peak = float(pct_start * total_steps) - 1.0
    last = float(total_steps) - 1.0
    if three_phase:
        back = float(2 * pct_start * total_steps) - 2.0
        return [(0.0, peak), (peak, back), (back, last)]
    return [(0.0, peak), (peak, last)]


def _anneal(start, end, fraction, strategy):
    """From `start` at `fraction == 0` to `end` at 1, exact at both ends.

    PyTorch writes `(end - start) * pct + start`, which can miss `end` by
    a few ulps (a linear one-cycle ending at 4.0233e-7 instead of 4e-7); a
    weighted sum of the two ends hits both exactly.
    """
    if strategy == "cos":
        weight = 0.5 * (1.0 - ops.cos(math.pi * fraction))
    else:
        weight = fraction
    return _base.lerp(start, end, weight)


def one_cycle(
    step,
    total_steps,
    start_value,
    peak_value,
    end_value,
    pct_start=0.3,
    anneal_strategy="cos",
    three_phase=False,
):
    """One cycle `start -> peak -> end` (three-phase: via `start` again).

    Any quantity can follow it: the learning rate, or the momentum going
    the opposite way. Past `total_steps - 1` it holds `end_value`.
    """
    start_value = _base.learning_rate_tensor(start_value)
    dtype = start_value.dtype
    peak_value = _base.constant(peak_value, dtype)
    end_value = _base.constant(end_value, dtype)
    phases = one_cycle_phases(total_steps, pct_start, three_phase)
    if three_phase:
        targets = [
            (start_value, peak_value),
            (peak_value, start_value),
            (start_value, end_value),
        ]
    else:
        targets = [(start_value, peak_value), (peak_value, end_value)]
    step = ops.minimum(_base.step_as(step, dtype), float(total_steps) - 1.0)
    value = None
    # Walk the phases backwards so that the earliest matching phase wins.
    for (first, last), (begin, finish) in reversed(list(zip(phases, targets))):
        fraction = ops.clip((step - first) / (last - first), 0.0, 1.0)
        # Exactly 1 from the phase's last step on, even where XLA divides
        # by multiplying with a rounded reciprocal.
        fraction = ops.where(step >= last, 1.0, fraction)
        phase_value = _anneal(begin, finish, fraction, anneal_strategy)
        value = (
            phase_value
            if value is None
            else ops.where(step <= last, phase_value, value)
        )
    return value


@keras.saving.register_keras_serializable(package="keras_lr")
class OneCycle(_base.LearningRateSchedule):
    """A `LearningRateSchedule` following the 1cycle policy.

    The rate rises from `maximal_learning_rate / div_factor` to
    `maximal_learning_rate` over the first `pct_start` of `total_steps`,
    then anneals to `initial / final_div_factor`. With `three_phase=True`
    it comes back down to the initial rate symmetrically first, then
    anneals to the minimum. Values equal PyTorch's `OneCycleLR` for steps
    `0 ... total_steps - 1`; past the planned end the rate holds its final
    value instead of failing. Momentum cycling is done by
    `keras_lr.callbacks.OneCycleLR`.

    ```python
    initial = maximal_learning_rate / div_factor
    minimum = initial / final_div_factor
    def anneal(start, end, pct):          # "cos"; "linear" is a straight line
        return end + (start - end) / 2 * (cos(pi * pct) + 1)
    # phase 1: initial -> maximal over steps [0, pct_start * total_steps - 1]
    # phase 2: maximal -> minimum over the rest, up to total_steps - 1
    ```

    Args:
        maximal_learning_rate: A Python float, a scalar tensor or a
            `keras.Variable`, > 0 (read at every call; an int counts as a
            float). The peak rate.
        total_steps: A Python int > 0. Length of the cycle, in steps.
        pct_start: A Python float in (0, 1). Fraction of the cycle spent
            rising.
        div_factor: A Python float > 0. `initial = maximal / div_factor`.
        final_div_factor: A Python float > 0. `minimum = initial /
            final_div_factor`.
        anneal_strategy: A string, `"cos"` or `"linear"`.
        three_phase: A bool. Use the three-phase variant.
        name: A string. Name scope of the operations.

    Returns:
        A scalar tensor of the dtype of `maximal_learning_rate`.

    Raises:
        ValueError: for non-positive values, `pct_start` outside (0, 1), an
            unknown `anneal_strategy`, or a `total_steps` too small to give
            every phase at least one step.

    Example:

    ```python
    schedule = keras_lr.schedules.OneCycle(0.1, total_steps=10 * 390)
    ```

    Reference:
        Smith & Topin, "Super-Convergence: Very Fast Training of Neural
        Networks Using Large Learning Rates", 2018.
    """

    def __init__(
        self,
        maximal_learning_rate,
        total_steps,
        pct_start=0.3,
        div_factor=25.0,
        final_div_factor=1e4,
        anneal_strategy="cos",
        three_phase=False,
        name="OneCycle",
    ):
        super().__init__()
        _checks.check_positive_rate(
            "maximal_learning_rate", maximal_learning_rate
        )
        _checks.check_positive_int("total_steps", total_steps)
        _checks.check_open_interval("pct_start", pct_start, 0.0, 1.0)
        _checks.check_positive("div_factor", div_factor)
        _checks.check_positive("final_div_factor", final_div_factor)
        _checks.check_choice(
            "anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES
        )
        _checks.check_bool("three_phase", three_phase)
        for first, last in one_cycle_phases(
            total_steps, pct_start, three_phase
        ):
            if last - first <= 0:
                raise ValueError(
                    "Argument `total_steps` is too small for `pct_start`: a "
                    "phase of the cycle would last no step. Received: "
                    f"total_steps={total_steps}, pct_start={pct_start}, "
                    f"three_phase={three_phase}"
                )
        self.maximal_learning_rate = maximal_learning_rate
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.anneal_strategy = anneal_strategy
        self.three_phase = three_phase
        self.name = name

    @property
    def initial_learning_rate(self) -> float:
        """The rate at step 0: `maximal_learning_rate / div_factor`.

        A Python float; for a tensor or variable `maximal_learning_rate`,
        from its current value.
        """
        maximal = float(_base.config_value(self.maximal_learning_rate))
        return maximal / self.div_factor

    @property
    def minimal_learning_rate(self) -> float:
        """The final rate: `initial_learning_rate / final_div_factor`."""
        return self.initial_learning_rate / self.final_div_factor

    def __call__(self, step):
        with keras.name_scope(self.name):
            peak = _base.learning_rate_tensor(self.maximal_learning_rate)
            initial = peak / _base.constant(self.div_factor, peak.dtype)
            return one_cycle(
                step,
                self.total_steps,
                initial,
                peak,
                initial / _base.constant(self.final_div_factor, peak.dtype),
                self.pct_start,
                self.anneal_strategy,
                self.three_phase,
            )

    def get_config(self):
        return {
            "maximal_learning_rate": _base.config_value(
                self.maximal_learning_rate
            ),
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "anneal_strategy": self.anneal_strategy,
            "three_phase": self.three_phase,
            "name": self.name,
        }
