"""Every schedule against its independent closed-form reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.schedules import reference as ref
from tests.schedules.cases import CASE_IDS
from tests.schedules.cases import CASES

pytestmark = pytest.mark.portable

RTOL = 2e-5  # float32 arithmetic against a float64 reference
ATOL = 1e-7  # times the peak rate: float32 cos() near pi


def values(schedule, steps):
    return np.array([float(schedule(tf.constant(s, tf.int64))) for s in steps])


@pytest.mark.needs_float64
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


@pytest.mark.needs_float64
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


COOLDOWN_POINTS = [0.0, 1e-6, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0]


@pytest.mark.needs_float64
@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_cooldown_factor_matches_reference(shape):
    from keras_lr.schedules.warmup_stable_decay import cooldown_factor

    got = [
        float(cooldown_factor(tf.constant(t, tf.float64), shape))
        for t in COOLDOWN_POINTS
    ]
    expected = [ref.cooldown(t, shape) for t in COOLDOWN_POINTS]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert got[0] == 1.0 and got[-1] == 0.0
    # Outside [0, 1] it is clipped; a Python float gives floatx.
    assert float(cooldown_factor(-0.5, shape)) == 1.0
    assert float(cooldown_factor(2.0, shape)) == 0.0
    assert keras.backend.standardize_dtype(
        cooldown_factor(0.5, shape).dtype
    ) == "float32"


def test_one_minus_sqrt_is_half_way_a_quarter_into_the_cooldown():
    """Hägele et al.: lr = peak - (peak - end) * sqrt(t); sqrt(1/4) = 1/2."""
    from keras_lr.schedules import WarmupStableDecay

    schedule = WarmupStableDecay(1.0, 0, 100, 400, end_learning_rate=0.2)
    got = values(schedule, [0, 99, 100, 200, 500])
    np.testing.assert_allclose(got, [1.0, 1.0, 1.0, 0.6, 0.2], rtol=1e-7)


@pytest.mark.tensorflow_only
def test_warmup_stable_decay_function_under_xla():
    """The pure function traces under XLA and matches the reference."""
    from keras_lr.schedules.warmup_stable_decay import warmup_stable_decay

    step = tf.Variable(0, dtype=tf.int64)

    @tf.function(jit_compile=True)
    def compiled():
        return warmup_stable_decay(
            step, 0.1, 20, 30, 50, 0.01, 0.001, decay_shape="cosine"
        )

    steps = [0, 1, 10, 19, 20, 21, 35, 49, 50, 51, 75, 99, 100, 101, 2**40]
    got = []
    for s in steps:
        step.assign(s)
        got.append(float(compiled()))
    expected = [
        ref.warmup_stable_decay(s, 0.1, 20, 30, 50, 0.01, 0.001, "cosine")
        for s in steps
    ]
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * 0.1)
