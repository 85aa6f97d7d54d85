"""Reading a learning rate off a range-test curve: pure NumPy functions.

Every function takes the swept learning rates and the smoothed losses (one
per step, same length) and returns a Python float. Non-finite points (the
last steps of a diverged run) are ignored.
"""

import math

import numpy as np

METHODS = ("valley", "steepest", "minimum")
MIN_POINTS = 3


def smooth_losses(losses, beta: float = 0.98) -> np.ndarray:
    """Debiased exponential moving average of `losses` (fastai's smoothing).

    ```python
    average = beta * average + (1 - beta) * loss      # average starts at 0
    smoothed[i] = average / (1 - beta ** (i + 1))
    ```

    Once a loss is not finite, every later smoothed value is `nan` or `inf`.

    Args:
        losses: A 1-D array-like of per-step losses.
        beta: A Python float in [0, 1). The smoothing factor; 0 gives the
            raw losses back.

    Returns:
        A float64 NumPy array, same length as `losses`.
    """
    losses = np.asarray(losses, dtype=np.float64)
    smoother = LossSmoother(beta)
    return np.array([smoother.add(loss) for loss in losses], dtype=np.float64)


class LossSmoother:
    """`smooth_losses` one loss at a time, for a test still running.

    `keras_lr.callbacks.LRRangeTest` stops on the value `add` returns and
    its result holds these same values: the one place the loss is
    smoothed.
    """

    def __init__(self, beta: float = 0.98):
        self.beta = float(beta)
        self.values: list[float] = []
        self._average = 0.0

    def add(self, loss: float) -> float:
        """Adds the next step's loss; returns its smoothed value."""
        beta = self.beta
        self._average = beta * self._average + (1.0 - beta) * float(loss)
        smoothed = self._average / (1.0 - beta ** (len(self.values) + 1))
        self.values.append(smoothed)
        return smoothed


def _finite_curve(learning_rates, smoothed_losses):
    lrs = np.asarray(learning_rates, dtype=np.float64)
    losses = np.asarray(smoothed_losses, dtype=np.float64)
    if lrs.shape != losses.shape or lrs.ndim != 1:
        raise ValueError(
            "Arguments `learning_rates` and `smoothed_losses` must be 1-D "
            f"arrays of the same length. Received: shapes {lrs.shape} and "
            f"{losses.shape}"
        )
    keep = np.isfinite(losses) & np.isfinite(lrs) & (lrs > 0)
    lrs, losses = lrs[keep], losses[keep]
    if lrs.size < MIN_POINTS:
        raise ValueError(
            f"A suggestion needs at least {MIN_POINTS} finite points on the "
            f"curve. Received: {lrs.size} finite point(s); the run probably "
            "diverged at once (lower `start_lr`)."
        )
    return lrs, losses


def _search_window(losses) -> tuple[int, int]:
    """Indices to search for a falling curve: skip the first tenth (the
    moving average is still settling there, as fastai does) and stop at the
    lowest point (past it the curve may fall again after a blow-up)."""
    lowest = int(np.argmin(losses))
    first = min(losses.size // 10, lowest)
    return first, lowest


def steepest(learning_rates, smoothed_losses) -> float:
    """The learning rate where the smoothed loss falls fastest.

    The slope is taken against `log(lr)` (central differences), so the
    answer does not depend on whether the sweep was linear or exponential.
    Only the part of the curve before its lowest point is searched, after
    the first tenth of the steps.
    """
    lrs, losses = _finite_curve(learning_rates, smoothed_losses)
    slopes = np.gradient(losses, np.log(lrs))
    first, lowest = _search_window(losses)
    return float(lrs[first + int(np.argmin(slopes[first : lowest + 1]))])


def minimum(learning_rates, smoothed_losses) -> float:
    """The learning rate of the lowest smoothed loss, divided by 10."""
    lrs, losses = _finite_curve(learning_rates, smoothed_losses)
    return float(lrs[int(np.argmin(losses))] / 10.0)


def longest_falling_stretch(smoothed_losses) -> tuple[int, int]:
    """First and last index of the longest run of consecutive falls.

    A run is a stretch where every step lowers the loss. Among runs of
    equal length, the one that falls further wins. The input is meant to
    be a smoothed curve: on raw losses noise cuts every run short.

    Raises:
        ValueError: if the loss never falls.
    """
    losses = np.asarray(smoothed_losses, dtype=np.float64)
    falls = np.diff(losses) < 0
    best = None
    i = 0
    while i < falls.size:
        if not falls[i]:
            i += 1
            continue
        j = i
        while j < falls.size and falls[j]:
            j += 1
        key = (j - i, losses[i] - losses[j])
        if best is None or key > best[0]:
            best = (key, i, j)
        i = j
    if best is None:
        raise ValueError(
            "The smoothed loss never falls, so there is no valley to "
            "suggest a learning rate from; lower `start_lr` or raise "
            "`num_steps`."
        )
    return best[1], best[2]


def valley(learning_rates, smoothed_losses) -> float:
    """The middle of the longest steadily falling stretch of the curve.

    The stretch is the longest run of consecutive falls of the smoothed
    loss (see `longest_falling_stretch`); the suggestion is the learning
    rate halfway along it in steps (halfway in `log(lr)` for an
    exponential sweep): well inside the region where the loss falls,
    clear of both the flat start and the blow-up.
    """
    lrs, losses = _finite_curve(learning_rates, smoothed_losses)
    start, end = longest_falling_stretch(losses)
    return float(lrs[(start + end) // 2])


_FUNCTIONS = {"valley": valley, "steepest": steepest, "minimum": minimum}


def check_method(method) -> None:
    if method not in METHODS:
        expected = ", ".join(repr(m) for m in METHODS)
        raise ValueError(
            f"Argument `method` must be one of {expected}. "
            f"Received: method={method!r}"
        )


def suggest(learning_rates, smoothed_losses, method: str = "valley") -> float:
    """The learning rate suggested by `method` ("valley", "steepest" or
    "minimum") for one curve."""
    check_method(method)
    return _FUNCTIONS[method](learning_rates, smoothed_losses)


def geometric_mean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 1:
        return float(values[0])  # exp(log(x)) is not always x
    return float(math.exp(np.mean(np.log(values))))


def noise_ratio(losses, smoothed_losses) -> float:
    """Step-to-step noise of the raw loss relative to how far the curve falls.

    Measured up to the lowest smoothed loss (past it the blow-up is signal,
    not noise). Noise is the robust spread of consecutive differences of
    the raw loss, `1.4826 * MAD / sqrt(2)`, so the trend of the curve adds
    little; the fall is the first smoothed loss minus the lowest one.
    Returns `inf` when the curve never falls.
    """
    raw = np.asarray(losses, dtype=np.float64)
    smooth = np.asarray(smoothed_losses, dtype=np.float64)
    keep = np.isfinite(raw) & np.isfinite(smooth)
    raw, smooth = raw[keep], smooth[keep]
    if raw.size < MIN_POINTS:
        return math.inf
    lowest = int(np.argmin(smooth))
    fall = float(smooth[0] - smooth[lowest])
    if fall <= 0.0:
        return math.inf
    steps = np.diff(raw[: max(lowest + 1, MIN_POINTS)])
    mad = float(np.median(np.abs(steps - np.median(steps))))
    return 1.4826 * mad / math.sqrt(2.0) / fall
