"""The answer between the finalists: a parabola through the race's scores.

Successive halving names one of its candidates, which sit a fixed factor
apart (eight across two decades: about 2x). The best rate is rarely one
of them, and the last rung's two finalists often score within the noise
of each other. The deepest rung where three or more candidates trained
the same number of steps says more: `between_finalists` fits a parabola
to its scores in log rate and takes the vertex, kept between the
finalists, so the answer never leaves the span the race ended on. A
winner that is the lowest or highest of all the candidates is left as it
is: its scores say the best rate may lie beyond it, not inside.
"""

import math

import numpy as np


def between_finalists(entries: list[dict], mode: str) -> float | None:
    """The vertex, in log rate, of the parabola fitted (least squares) to
    the scores of the deepest rung with three or more finite scores,
    clipped to the span of the last rung's finalists.

    Args:
        entries: The race's rows (`RaceResult.entries`): `candidate`,
            `rung`, `score`, `status`.
        mode: `"min"` or `"max"`: whether a lower score is better.

    Returns:
        The refined rate, or `None` when there is nothing to refine: fewer
        than two finite finalists, a winner (the best finalist) that is
        the lowest or highest of all the candidates, no rung with three
        finite scores, or scores that do not curve towards a best (a
        vertex that is a worst point, or a line).
    """
    if mode not in ("min", "max"):
        raise ValueError(
            f"Argument `mode` must be 'min' or 'max'. Received: mode={mode!r}"
        )

    def finite(rung):
        return [
            e
            for e in entries
            if e["rung"] == rung
            and e["status"] == "ok"
            and math.isfinite(e["score"])
        ]

    rungs = sorted({e["rung"] for e in entries})
    if not rungs:
        return None
    finalists = finite(rungs[-1])
    if len(finalists) < 2:
        return None
    sign = 1.0 if mode == "min" else -1.0
    winner = min(finalists, key=lambda e: sign * e["score"])["candidate"]
    every = [e["candidate"] for e in entries]
    if winner in (min(every), max(every)):
        return None
    fitted = next(
        (finite(r) for r in reversed(rungs) if len(finite(r)) >= 3), None
    )
    if fitted is None:
        return None
    x = np.log([e["candidate"] for e in fitted])
    y = sign * np.array([e["score"] for e in fitted], dtype="float64")
    # Centred and scaled, so the fit is well conditioned at any rate.
    centre, scale = x.mean(), max(np.ptp(x), 1e-12)
    curve, slope, _ = np.polyfit((x - centre) / scale, y, 2)
    # Flat within rounding (a line, or equal scores) is no curve.
    if not curve > 1e-9 * np.ptp(y):
        return None
    vertex = centre - scale * slope / (2.0 * curve)
    low = min(e["candidate"] for e in finalists)
    high = max(e["candidate"] for e in finalists)
    if vertex <= math.log(low):
        return float(low)
    if vertex >= math.log(high):
        return float(high)
    return float(np.exp(vertex))
