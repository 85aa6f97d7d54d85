"""Interpolations hit their end points exactly.

`start + (end - start) * t` can miss `end` at `t == 1` by a few ulps of
`start`: a linear one-cycle from 0.1 ended at 4.0233e-7 instead of 4e-7 in
float32. Every schedule interpolates as `start * (1 - t) + end * t`, which
is exact at both ends. Each expected value is the plain math in numpy
float64 (or float32 where stated), never package code.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_lr import schedules

pytestmark = pytest.mark.portable

f64 = np.float64

# (id, schedule factory, [(step, expected value in float64), ...])
ENDPOINTS = [
    *[
        (
            f"one_cycle_{strategy}",
            lambda strategy=strategy: schedules.OneCycle(
                f64(0.1), 100, anneal_strategy=strategy
            ),
            # Start, peak (step pct * total - 1), end, past the end.
            [
                (0, f64(0.1) / 25),
                (29, f64(0.1)),
                (99, f64(0.1) / 25 / 1e4),
                (10**6, f64(0.1) / 25 / 1e4),
            ],
        )
        for strategy in ("linear", "cos")
    ],
    *[
        (
            f"one_cycle_three_phase_{strategy}",
            lambda strategy=strategy: schedules.OneCycle(
                f64(0.1),
                100,
                pct_start=0.25,
                anneal_strategy=strategy,
                three_phase=True,
            ),
            # Back at the initial rate at 2 * pct * total - 2.
            [
                (0, f64(0.1) / 25),
                (24, f64(0.1)),
                (48, f64(0.1) / 25),
                (99, f64(0.1) / 25 / 1e4),
            ],
        )
        for strategy in ("linear", "cos")
    ],
    (
        "cyclical",
        lambda: schedules.CyclicalLearningRate(f64(1e-3), f64(1e-2), 20),
        # Troughs and crests of the triangle.
        [
            (0, f64(1e-3)),
            (20, f64(1e-2)),
            (40, f64(1e-3)),
            (60, f64(1e-2)),
            (10**6, f64(1e-3)),
        ],
    ),
    (
        "cyclical_triangular2",
        lambda: schedules.CyclicalLearningRate(
            f64(1e-3), f64(1e-2), 20, mode="triangular2"
        ),
        [(0, f64(1e-3)), (20, f64(1e-2)), (40, f64(1e-3))],
    ),
    *[
        (
            f"polynomial_power_{power}",
            lambda power=power: schedules.PolynomialDecay(
                f64(0.9), 10, f64(0.2), power=power
            ),
            # The initial rate at 0, the end rate at and past decay_steps.
            [(0, f64(0.9)), (10, f64(0.2)), (500, f64(0.2))],
        )
        for power in (1.0, 0.5, 2.0)
    ],
    (
        "polynomial_cycle",
        lambda: schedules.PolynomialDecay(f64(0.9), 10, f64(0.2), cycle=True),
        [(0, f64(0.9)), (10, f64(0.2)), (20, f64(0.2)), (70, f64(0.2))],
    ),
    (
        "cosine",
        lambda: schedules.CosineDecay(f64(0.9), 10, alpha=0.3),
        # The peak at the start, alpha times it at and past the end.
        [
            (0, f64(0.9)),
            (10, f64(0.9) * f64(0.3)),
            (10**6, f64(0.9) * f64(0.3)),
        ],
    ),
    (
        "cosine_warmup",
        lambda: schedules.CosineDecay(
            f64(0.1), 10, alpha=0.3, warmup_target=0.9, warmup_steps=5
        ),
        [(0, f64(0.1)), (5, f64(0.9)), (15, f64(0.9) * f64(0.3))],
    ),
    (
        "cosine_restarts_fixed_period",
        lambda: schedules.CosineDecayRestarts(
            f64(0.9), 10, t_mul=1.0, alpha=0.3
        ),
        [(step, f64(0.9)) for step in (0, 10, 20, 50)],
    ),
    (
        "cosine_restarts_doubling",
        lambda: schedules.CosineDecayRestarts(
            f64(0.9), 10, t_mul=2.0, alpha=0.3
        ),
        [(step, f64(0.9)) for step in (0, 10, 30)],
    ),
    (
        "gaussian",
        lambda: schedules.GaussianDecay(f64(0.9), 10, alpha=0.3),
        # The initial rate at 0, alpha times it once the bell is 0.
        [(0, f64(0.9)), (2**40, f64(0.9) * f64(0.3))],
    ),
    *[
        (
            f"warmup_stable_decay_{shape}",
            lambda shape=shape: schedules.WarmupStableDecay(
                f64(0.9),
                5,
                10,
                10,
                initial_learning_rate=f64(0.2),
                end_learning_rate=f64(0.3),
                decay_shape=shape,
            ),
            # Start, end of warmup, the stable phase, start and end of the
            # cooldown, far past it.
            [
                (0, f64(0.2)),
                (5, f64(0.9)),
                (10, f64(0.9)),
                (15, f64(0.9)),
                (25, f64(0.3)),
                (26, f64(0.3)),
                (2**40, f64(0.3)),
            ],
        )
        for shape in ("linear", "cosine", "1-sqrt")
    ],
    (
        "warmup_stable_decay_decay_only",
        lambda: schedules.WarmupStableDecay(
            f64(0.9), 0, 0, 10, end_learning_rate=f64(0.3)
        ),
        # No warmup: the peak at step 0.
        [(0, f64(0.9)), (10, f64(0.3)), (11, f64(0.3))],
    ),
    (
        "warmup_stable_decay_no_decay",
        lambda: schedules.WarmupStableDecay(
            f64(0.9),
            5,
            0,
            0,
            initial_learning_rate=f64(0.2),
            end_learning_rate=f64(0.3),
        ),
        # A zero-length cooldown drops to the end rate at once.
        [(0, f64(0.2)), (4, f64(0.2) * 0.2 + f64(0.9) * 0.8), (5, f64(0.3))],
    ),
    (
        "linear_warmup",
        lambda: schedules.LinearWarmup(
            schedules.ExponentialDecay(f64(0.9), 10, 0.5),
            5,
            initial_learning_rate=f64(0.2),
        ),
        # From its own start to exactly where the schedule begins.
        [(0, f64(0.2)), (5, f64(0.9)), (15, f64(0.9) * f64(0.5))],
    ),
]


@pytest.mark.tensorflow_only
@pytest.mark.parametrize(
    "make, points",
    [case[1:] for case in ENDPOINTS],
    ids=[case[0] for case in ENDPOINTS],
)
def test_end_points_are_exact_in_float64(make, points):
    schedule = make()
    for step, expected in points:
        value = schedule(tf.constant(step, tf.int64))
        assert value.dtype == tf.float64
        np.testing.assert_allclose(
            float(value), expected, rtol=1e-12, atol=0, err_msg=f"step {step}"
        )
        # The end points are single roundings of the same operations.
        assert float(value) == expected, (step, float(value), expected)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("three_phase", [False, True])
def test_linear_one_cycle_ends_at_its_minimum_in_float32(three_phase):
    """The report: 4.0233e-7 instead of 0.1 / 25 / 1e4 = 4e-7."""
    schedule = schedules.OneCycle(
        0.1, 100, anneal_strategy="linear", three_phase=three_phase
    )
    minimum = np.float32(0.1) / np.float32(25.0) / np.float32(1e4)
    for step in (99, 100, 10**6):
        value = schedule(tf.constant(step, tf.int64))
        assert value.dtype == tf.float32
        np.testing.assert_allclose(float(value), 4e-7, rtol=1e-6)
        assert value.numpy() == minimum


@pytest.mark.tensorflow_only
def test_one_cycle_linear_end_matches_pytorch_closed_form():
    """The last step equals `min_lr` itself, not `(end - start) * 1 +
    start` as PyTorch computes it (which is off in the last digits)."""
    schedule = schedules.OneCycle(f64(1.0), 10, anneal_strategy="linear")
    start, end = f64(1.0), f64(1.0) / 25 / 1e4
    values = [float(schedule(tf.constant(s, tf.int64))) for s in range(10)]
    # Between the ends: the same line, to float64 rounding.
    pct = (np.arange(2, 10) - 2) / 7.0
    np.testing.assert_allclose(
        values[2:], (end - start) * pct + start, rtol=1e-12, atol=1e-15
    )
    assert values[-1] == end


# (id, schedule factory, steps, expected float32 value at each of them)
XLA_ENDPOINTS = [
    (
        "one_cycle_linear_end",
        lambda: schedules.OneCycle(0.1, 100, anneal_strategy="linear"),
        [99, 100, 2**40],
        np.float32(0.1) / np.float32(25.0) / np.float32(1e4),
    ),
    (
        "one_cycle_three_phase_linear_end",
        lambda: schedules.OneCycle(
            0.1, 98, anneal_strategy="linear", three_phase=True
        ),
        [97, 2**40],
        np.float32(0.1) / np.float32(25.0) / np.float32(1e4),
    ),
    (
        "polynomial_sqrt_end",
        lambda: schedules.PolynomialDecay(0.1, 10, 0.01, power=0.5),
        [10, 11, 2**40],
        np.float32(0.01),
    ),
    (
        "polynomial_cycle_sqrt_ends",
        lambda: schedules.PolynomialDecay(0.1, 10, 0.01, power=0.5, cycle=True),
        [10, 20, 30, 70, 10**6],
        np.float32(0.01),
    ),
    (
        "polynomial_start_from_zero",
        lambda: schedules.PolynomialDecay(0.0, 100, 0.1),
        [0],
        np.float32(0.0),
    ),
    (
        "polynomial_cycle_restarts",
        lambda: schedules.PolynomialDecay(0.1, 10, 0.01, power=0.5, cycle=True),
        [0],
        np.float32(0.1),
    ),
    *[
        (
            f"warmup_stable_decay_{shape}_{where}",
            lambda shape=shape: schedules.WarmupStableDecay(
                0.1,
                10,
                10,
                10,
                initial_learning_rate=0.01,
                end_learning_rate=0.001,
                decay_shape=shape,
            ),
            steps,
            np.float32(expected),
        )
        for shape in ("linear", "cosine", "1-sqrt")
        for where, steps, expected in (
            ("start", [0], 0.01),
            ("peak", [10, 15, 20], 0.1),
            ("end", [30, 31, 2**40], 0.001),
        )
    ],
]


@pytest.mark.tensorflow_only
@pytest.mark.parametrize(
    "make, steps, expected",
    [case[1:] for case in XLA_ENDPOINTS],
    ids=[case[0] for case in XLA_ENDPOINTS],
)
def test_end_points_are_exact_under_xla(make, steps, expected):
    """XLA divides by multiplying with a reciprocal and fuses `1 - a / b`
    into a multiply-add: `1 - 10 / 10` came out as -1.5e-8, and a square
    root of it as NaN. The end points must not depend on that."""
    schedule = make()
    step = tf.Variable(0, dtype=tf.int64)

    @tf.function(jit_compile=True)
    def compiled():
        return schedule(step)

    for s in steps:
        step.assign(s)
        value = compiled().numpy()
        assert value == expected, (s, value)
        assert value == schedule(tf.constant(s, tf.int64)).numpy()


@pytest.mark.tensorflow_only
def test_polynomial_cycle_under_xla_matches_reference_on_a_grid():
    """The cycle's horizon is the first multiple of `decay_steps` at or
    above the step, even where XLA's division lands just above it."""
    schedule = schedules.PolynomialDecay(0.1, 7, 0.01, power=2.0, cycle=True)
    step = tf.Variable(0, dtype=tf.int64)

    @tf.function(jit_compile=True)
    def compiled():
        return schedule(step)

    got, expected = [], []
    for s in range(0, 200):
        step.assign(s)
        got.append(float(compiled()))
        multiple = max(-(-s // 7), 1)
        remaining = 1.0 - s / (7 * multiple)
        expected.append((0.1 - 0.01) * remaining**2 + 0.01)
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-9)
