"""One representative set of schedules, shared by the value and contract
tests, each with its independent reference and its interesting steps."""

import dataclasses
from collections.abc import Callable

import keras

from keras_lr import schedules
from tests.schedules import reference as ref

FAR = [10**6, 2**31 + 5, 2**40]


@dataclasses.dataclass
class Case:
    id: str
    make: Callable[[], keras.optimizers.schedules.LearningRateSchedule]
    reference: Callable[[int], float]
    steps: list[int]
    bounds: tuple[float, float]
    keras_twin: Callable[[], object] | None = None


def _grid(*edges, far=True):
    steps = {0, 1}
    for edge in edges:
        steps.update({max(edge - 1, 0), edge, edge + 1})
    for a, b in zip(edges[:-1], edges[1:]):
        steps.add((a + b) // 2)
    if edges:
        steps.add(edges[0] // 2)
    steps = sorted(steps)
    return steps + (FAR if far else [])


def _cosine_restart_edges():
    edges, start, length = [], 0, 100
    for _ in range(4):
        start += length
        edges.append(start)
        length *= 2
    return edges


CASES = [
    Case(
        "exponential",
        lambda: schedules.ExponentialDecay(0.1, 100, 0.5),
        lambda s: ref.exponential(s, 0.1, 100, 0.5),
        _grid(100, 200, 1000, far=False) + [10**5],
        (0.0, 0.1),
        lambda: keras.optimizers.schedules.ExponentialDecay(0.1, 100, 0.5),
    ),
    Case(
        "exponential_staircase",
        lambda: schedules.ExponentialDecay(0.1, 100, 0.5, staircase=True),
        lambda s: ref.exponential(s, 0.1, 100, 0.5, True),
        _grid(100, 200, 300, 1000),
        (0.0, 0.1),
        lambda: keras.optimizers.schedules.ExponentialDecay(
            0.1, 100, 0.5, staircase=True
        ),
    ),
    Case(
        "inverse_time",
        lambda: schedules.InverseTimeDecay(0.1, 10, 0.5),
        lambda s: ref.inverse_time(s, 0.1, 10, 0.5),
        _grid(10, 20, 100),
        (0.0, 0.1),
        lambda: keras.optimizers.schedules.InverseTimeDecay(0.1, 10, 0.5),
    ),
    Case(
        "inverse_time_staircase",
        lambda: schedules.InverseTimeDecay(0.1, 10, 0.5, staircase=True),
        lambda s: ref.inverse_time(s, 0.1, 10, 0.5, True),
        _grid(10, 20, 100),
        (0.0, 0.1),
        lambda: keras.optimizers.schedules.InverseTimeDecay(
            0.1, 10, 0.5, staircase=True
        ),
    ),
    Case(
        "polynomial",
        lambda: schedules.PolynomialDecay(0.1, 200, 0.01, power=0.5),
        lambda s: ref.polynomial(s, 0.1, 200, 0.01, 0.5),
        _grid(100, 200),
        (0.01, 0.1),
        lambda: keras.optimizers.schedules.PolynomialDecay(
            0.1, 200, 0.01, power=0.5
        ),
    ),
    Case(
        "polynomial_cycle",
        lambda: schedules.PolynomialDecay(
            0.1, 200, 0.01, power=2.0, cycle=True
        ),
        lambda s: ref.polynomial(s, 0.1, 200, 0.01, 2.0, True),
        _grid(200, 400, 600),
        (0.01, 0.1),
        lambda: keras.optimizers.schedules.PolynomialDecay(
            0.1, 200, 0.01, power=2.0, cycle=True
        ),
    ),
    Case(
        "piecewise_seed",
        lambda: schedules.PiecewiseConstantDecay(
            [400, 700], [0.1, 0.01, 0.001]
        ),
        lambda s: ref.piecewise(s, [400, 700], [0.1, 0.01, 0.001]),
        _grid(400, 700),
        (0.001, 0.1),
        lambda: keras.optimizers.schedules.PiecewiseConstantDecay(
            [400, 700], [0.1, 0.01, 0.001]
        ),
    ),
    Case(
        "cosine",
        lambda: schedules.CosineDecay(0.1, 1000, alpha=0.1),
        lambda s: ref.cosine(s, 0.1, 1000, 0.1),
        _grid(250, 500, 1000),
        (0.01, 0.1),
        lambda: keras.optimizers.schedules.CosineDecay(0.1, 1000, alpha=0.1),
    ),
    Case(
        "cosine_warmup",
        lambda: schedules.CosineDecay(
            0.0, 1000, warmup_target=0.2, warmup_steps=100
        ),
        lambda s: ref.cosine(s, 0.0, 1000, 0.0, 0.2, 100),
        _grid(50, 100, 600, 1100),
        (0.0, 0.2),
        lambda: keras.optimizers.schedules.CosineDecay(
            0.0, 1000, warmup_target=0.2, warmup_steps=100
        ),
    ),
    Case(
        "cosine_restarts",
        lambda: schedules.CosineDecayRestarts(0.1, 100, 2.0, 0.5, 0.01),
        lambda s: ref.cosine_restarts(s, 0.1, 100, 2.0, 0.5, 0.01),
        _grid(*_cosine_restart_edges(), far=False) + [10**5],
        (0.0, 0.1),
        lambda: keras.optimizers.schedules.CosineDecayRestarts(
            0.1, 100, 2.0, 0.5, 0.01
        ),
    ),
    Case(
        "cosine_restarts_fixed_period",
        lambda: schedules.CosineDecayRestarts(0.1, 100, t_mul=1.0),
        lambda s: ref.cosine_restarts(s, 0.1, 100, 1.0),
        _grid(100, 200, 300, far=False) + [10**5 + 50],
        (0.0, 0.1),
        lambda: keras.optimizers.schedules.CosineDecayRestarts(
            0.1, 100, t_mul=1.0
        ),
    ),
    Case(
        "gaussian",
        lambda: schedules.GaussianDecay(0.1, 500, alpha=0.05),
        lambda s: ref.gaussian(s, 0.1, 500, 0.05),
        _grid(250, 500, 1000, 2000),
        (0.005, 0.1),
    ),
    Case(
        "cyclical_triangular",
        lambda: schedules.CyclicalLearningRate(1e-3, 1e-2, 20),
        lambda s: ref.torch_cyclic(s, 1e-3, 1e-2, 20),
        _grid(10, 20, 30, 40, 60, 80, far=False) + [10**5 + 7],
        (1e-3, 1e-2),
    ),
    Case(
        "cyclical_triangular2_asymmetric",
        lambda: schedules.CyclicalLearningRate(
            1e-3, 1e-2, 10, mode="triangular2", step_size_down=30
        ),
        lambda s: ref.torch_cyclic(s, 1e-3, 1e-2, 10, 30, "triangular2"),
        _grid(5, 10, 20, 40, 50, 80, 120),
        (1e-3, 1e-2),
    ),
    Case(
        "cyclical_exp_range",
        lambda: schedules.CyclicalLearningRate(
            1e-3, 1e-2, 10, mode="exp_range", gamma=0.99
        ),
        lambda s: ref.torch_cyclic(s, 1e-3, 1e-2, 10, 10, "exp_range", 0.99),
        _grid(5, 10, 20, 30, 40, 200),
        (1e-3, 1e-2),
    ),
    Case(
        "one_cycle",
        lambda: schedules.OneCycle(0.1, 1000),
        lambda s: ref.torch_one_cycle(min(s, 999), 0.1, 1000),
        _grid(150, 299, 300, 650, 999, 1000),
        (0.1 / 25 / 1e4, 0.1),
    ),
    Case(
        "one_cycle_linear_three_phase",
        lambda: schedules.OneCycle(
            0.1,
            1000,
            pct_start=0.25,
            anneal_strategy="linear",
            three_phase=True,
        ),
        lambda s: ref.torch_one_cycle(
            min(s, 999), 0.1, 1000, 0.25, 25.0, 1e4, "linear", True
        ),
        _grid(100, 249, 250, 498, 499, 750, 999, 1000),
        (0.1 / 25 / 1e4, 0.1),
    ),
    Case(
        "linear_warmup_keras_cosine",
        lambda: schedules.LinearWarmup(
            keras.optimizers.schedules.CosineDecay(0.1, 1000), 100, 0.01
        ),
        lambda s: ref.linear_warmup(
            s, lambda t: ref.cosine(t, 0.1, 1000), 100, 0.01
        ),
        _grid(50, 100, 600, 1100),
        (0.0, 0.1),
    ),
    Case(
        "joined_warmup_cosine_constant",
        lambda: schedules.JoinedSchedule(
            [
                schedules.PolynomialDecay(0.0, 100, 0.1),
                schedules.CosineDecay(0.1, 400),
                0.001,
            ],
            [100, 500],
        ),
        lambda s: ref.joined(
            s,
            [
                lambda t: ref.polynomial(t, 0.0, 100, 0.1),
                lambda t: ref.cosine(t, 0.1, 400),
                lambda t: 0.001,
            ],
            [100, 500],
        ),
        _grid(50, 100, 300, 500),
        (0.0, 0.1),
    ),
    Case(
        "scaled_cosine",
        lambda: schedules.ScaledSchedule(schedules.CosineDecay(0.1, 100), 0.5),
        lambda s: 0.5 * ref.cosine(s, 0.1, 100),
        _grid(50, 100),
        (0.0, 0.05),
    ),
    *[
        Case(
            f"warmup_stable_decay_{shape}",
            lambda shape=shape: schedules.WarmupStableDecay(
                0.1,
                100,
                300,
                200,
                initial_learning_rate=0.01,
                end_learning_rate=0.001,
                decay_shape=shape,
            ),
            lambda s, shape=shape: ref.warmup_stable_decay(
                s, 0.1, 100, 300, 200, 0.01, 0.001, shape
            ),
            # Phase ends at 100, 400 and 600; 450 and 550 inside the decay.
            _grid(50, 100, 250, 400, 450, 500, 550, 600, 1000),
            (0.001, 0.1),
        )
        for shape in ("1-sqrt", "linear", "cosine")
    ],
]

CASE_IDS = [case.id for case in CASES]
