"""The bracket a race runs across, and its candidates: a reading of the
range-test curve.

The curve says where the loss starts to fall and where it turns up; the
race trains candidates between the two instead of trusting one point of
it. `bracket` reads the span, `candidate_rates` spaces the candidates
across it with the curve's own readings among them.
"""

import numpy as np

from keras_lr.range_test.result import RangeTestResult

# The bracket starts where the smoothed loss has fallen by this fraction of
# its whole fall (from its highest point after the settling tenth of the
# sweep to its lowest), and at most this many decades below its top.
FALL_FRACTION = 0.1
MAX_DECADES = 3.0
# The curve readings put among the candidates.
READINGS = ("valley", "steepest")


def _run_bracket(run: RangeTestResult) -> tuple[float, float]:
    lrs = np.asarray(run.learning_rates, dtype=np.float64)
    losses = np.asarray(run.smoothed_losses, dtype=np.float64)
    finite = np.isfinite(losses)
    if not finite.any():
        raise ValueError(
            "The range test recorded no finite loss, so it gives no "
            "bracket to race in: lower `start_lr`."
        )
    last_finite = int(np.flatnonzero(finite)[-1])
    lowest = int(np.argmin(np.where(finite, losses, np.inf)))
    settle = min(losses.size // 10, lowest)
    top_index = settle + int(np.argmax(losses[settle : lowest + 1]))
    top, bottom = losses[top_index], losses[lowest]
    if top - bottom > 1e-3 * abs(top):
        level = top - FALL_FRACTION * (top - bottom)
        low = lrs[top_index + int(np.argmax(losses[top_index:] <= level))]
        high = lrs[lowest]
    else:
        # The loss never fell: up to where it rises 2% above its start.
        rise = np.flatnonzero(
            ~finite | (losses > losses[0] + 0.02 * abs(losses[0]))
        )
        high = lrs[rise[0]] if rise.size else lrs[last_finite]
        low = lrs[0]
    low = max(low, high / 10**MAX_DECADES)
    return float(low), float(max(high, low))


def bracket(result: RangeTestResult) -> tuple[float, float]:
    """The rates a race runs across: `(low, high)`.

    `high` is where the loss starts to turn up: the rate of the lowest
    smoothed loss. `low` is where the loss starts to fall: where the
    smoothed loss has fallen by a tenth of its whole fall (from its
    highest point after the first tenth of the sweep to its lowest), but
    at most `MAX_DECADES` (3) decades below `high`: a rate 1000x below the
    turn trains too slowly to win a race. A curve that never falls gives
    the 3 decades below where it rises 2% above its start (or below the
    last rate). With repeats, the union over the runs.
    """
    pairs = [_run_bracket(run) for run in result.runs]
    return min(p[0] for p in pairs), max(p[1] for p in pairs)


def candidate_rates(result: RangeTestResult, count: int) -> np.ndarray:
    """`count` rates log-spaced across `bracket(result)`, with the curve's
    valley and steepest readings in place of the nearest of them."""
    low, high = bracket(result)
    rates = np.geomspace(low, high, count) if high > low else np.full(1, low)
    for method in READINGS:
        try:
            reading = result.suggestion(method)
        except ValueError:
            continue
        if low < reading < high and count > 2:
            inner = np.abs(np.log(rates[1:-1] / reading))
            rates[1 + int(np.argmin(inner))] = reading
    return np.unique(rates)
