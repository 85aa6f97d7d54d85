"""The bracket a race runs across, and its candidates: a reading of the
range-test curve.

The curve says where the loss starts to fall and where it turns up; the
race trains candidates between the two instead of trusting one point of
it. `bracket` reads the span, `candidate_rates` spaces the candidates
across it with the curve's own readings among them.

The reading is made on a robust copy of the curve, so that no single
batch can move it: the raw losses through a running median of
`MEDIAN_WINDOW` steps (one outlying batch never reaches the median), then
the range test's own smoothing; and the turn is looked for only after the
first tenth of the sweep, which the smoothing's start over-weights.

A curve whose loss never falls gives no span at all: no rate of the sweep
made progress before the loss rose. That happens when the model needs
more steps than the sweep gives it, and when the rate is not a step size
(Keras' `Ftrl` computes the weights from accumulated gradients scaled by
the rate, so a rate growing through the sweep throws them off at rates
far below the ones that train well at a fixed rate). The race then
searches the whole range the test was asked to sweep.
"""

import numpy as np

from keras_lr.range_test.result import RangeTestResult
from keras_lr.range_test.suggestions import smooth_losses

# The bracket starts where the smoothed loss has fallen by this fraction of
# its whole fall (from its highest point after the settling tenth of the
# sweep to its lowest), and at most this many decades below its top.
FALL_FRACTION = 0.1
MAX_DECADES = 3.0
# Steps of the running median the raw losses go through first.
MEDIAN_WINDOW = 5
# A bracket narrower than this factor is degenerate (the curve gives no
# span to race in), and is flagged.
MIN_SPAN = 3.0
# Every bracket reaches at least this many decades below its top: in a
# short sweep the loss starts to fall late (the model needs steps to
# respond), and the rate that trains best over a whole run can lie well
# below that point (Adam-like optimizers: 20x below the turn).
MIN_DECADES = 2.0
# The curve readings put among the candidates.
READINGS = ("valley", "steepest")


def robust_curve(run: RangeTestResult) -> np.ndarray:
    """The run's losses through a running median of `MEDIAN_WINDOW` steps
    (mirrored at the ends, so the first batch counts once), then smoothed
    as the range test smooths (`beta`). Steps from the first non-finite
    loss on stay non-finite."""
    losses = np.asarray(run.losses, dtype=np.float64)
    finite = np.isfinite(losses)
    end = losses.size if finite.all() else int(np.argmin(finite))
    out = np.full(losses.size, np.nan)
    if end == 0:
        return out
    head = losses[:end]
    half = MEDIAN_WINDOW // 2
    if end > half:
        padded = np.pad(head, half, mode="reflect")
        windows = np.lib.stride_tricks.sliding_window_view(
            padded, MEDIAN_WINDOW
        )
        head = np.median(windows, axis=1)
    out[:end] = smooth_losses(head, run.beta)
    out[end:] = losses[end:]
    return out


def _run_bracket(run: RangeTestResult) -> tuple[float, float] | None:
    """`(low, high)` read off one run, or `None` when its loss never
    fell."""
    lrs = np.asarray(run.learning_rates, dtype=np.float64)
    losses = robust_curve(run)
    finite = np.isfinite(losses)
    if not finite.any():
        raise ValueError(
            "The range test recorded no finite loss, so it gives no "
            "bracket to race in: lower `start_lr`."
        )
    last_finite = int(np.flatnonzero(finite)[-1])
    settle = min(losses.size // 10, last_finite)
    masked = np.where(finite, losses, np.inf)
    lowest = settle + int(np.argmin(masked[settle:]))
    top_index = settle + int(np.argmax(losses[settle : lowest + 1]))
    top, bottom = losses[top_index], losses[lowest]
    if top - bottom > 1e-3 * abs(top):
        level = top - FALL_FRACTION * (top - bottom)
        low = lrs[top_index + int(np.argmax(losses[top_index:] <= level))]
        high = lrs[lowest]
    else:
        return None
    low = max(low, high / 10**MAX_DECADES)
    return float(low), float(max(high, low))


def _swept_range(result: RangeTestResult) -> tuple[float, float]:
    """The range the test was asked to sweep (its config's `start_lr` and
    `end_lr`, else the first and last rates it recorded)."""
    first = min(float(run.learning_rates[0]) for run in result.runs)
    last = max(float(run.learning_rates[-1]) for run in result.runs)
    low = float(result.config.get("start_lr", first))
    high = float(result.config.get("end_lr", last))
    return min(low, first), max(high, last)


def read_bracket(result: RangeTestResult) -> dict:
    """The bracket and whether the curve gave one: a dict of `low`,
    `high` (the rates to race across: the reading, reaching at least
    `MIN_DECADES` below its top), `fell` (whether the loss fell in every
    run; where it did not, the bracket is the whole swept range),
    `degenerate` (the curve's own reading spanned less than `MIN_SPAN`,
    or the loss never fell) and `read` (the reading before widening;
    the swept range when the loss never fell)."""
    pairs = [_run_bracket(run) for run in result.runs]
    if any(p is None for p in pairs):
        low, high = _swept_range(result)
        return {
            "low": low,
            "high": high,
            "fell": False,
            "degenerate": True,
            "read": (low, high),
        }
    low, high = min(p[0] for p in pairs), max(p[1] for p in pairs)
    degenerate = high < MIN_SPAN * low
    return {
        "low": min(low, high / 10**MIN_DECADES),
        "high": high,
        "fell": True,
        "degenerate": bool(degenerate),
        "read": (low, high),
    }


def bracket(result: RangeTestResult) -> tuple[float, float]:
    """The rates a race runs across: `(low, high)`.

    Both ends are read off `robust_curve` (a running median, then the
    range test's smoothing). `high` is where the loss starts to turn up:
    the rate of the lowest point after the first tenth of the sweep.
    `low` is where the loss starts to fall: where the curve has fallen by
    a tenth of its whole fall (from its highest point after the first
    tenth of the sweep to its lowest), but at most `MAX_DECADES` (3)
    decades below `high`: a rate 1000x below the turn trains too slowly to
    win a race. A curve that never falls (in any run) gives the whole
    range the test was asked to sweep. With repeats, the union over the
    runs. Every bracket reaches at least `MIN_DECADES`
    (2) decades below its top; one the curve read narrower than
    `MIN_SPAN` (3x) is degenerate (`read_bracket` says so).
    """
    reading = read_bracket(result)
    return reading["low"], reading["high"]


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
