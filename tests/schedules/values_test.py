"""Every schedule against its independent closed-form reference."""

import numpy as np
import pytest
import tensorflow as tf

from tests.schedules.cases import CASE_IDS
from tests.schedules.cases import CASES

RTOL = 2e-5  # float32 arithmetic against a float64 reference
ATOL = 1e-7  # times the peak rate: float32 cos() near pi


def values(schedule, steps):
    return np.array([float(schedule(tf.constant(s, tf.int64))) for s in steps])


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_matches_reference(case):
    # Far steps lose float32 resolution in `step / period`; compare them in
    # the bounds test instead, except where the value has settled.
    steps = [s for s in case.steps if s < 2**24]
    got = values(case.make(), steps)
    expected = np.array([case.reference(s) for s in steps])
    atol = ATOL * case.bounds[1]
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=atol)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.keras_twin], ids=lambda c: c.id
)
def test_equals_keras_builtin(case):
    steps = case.steps
    ours = values(case.make(), steps)
    theirs = values(case.keras_twin(), steps)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=0)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_finite_and_within_bounds(case):
    low, high = case.bounds
    got = values(case.make(), case.steps)
    assert np.all(np.isfinite(got)), got
    assert np.all(got >= low * (1 - 1e-5) - 1e-12), (got, low)
    assert np.all(got <= high * (1 + 1e-5)), (got, high)


def test_seed_step_annealing_values():
    """Seed 003: 0.1 until step 400, 0.01 until 700, then 0.001."""
    from keras_lr.schedules import PiecewiseConstantDecay

    schedule = PiecewiseConstantDecay([400, 700], [0.1, 0.01, 0.001])
    got = values(schedule, [0, 400, 401, 700, 701, 10**9])
    np.testing.assert_allclose(
        got, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-7
    )
