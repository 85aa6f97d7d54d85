"""Rates given as Python ints, tensors and `keras.Variable`s.

Keras' schedules compute in the dtype of `initial_learning_rate`, so a
Python int gave integer arithmetic (a cyclical rate stuck at its ends, a
one-cycle failing inside TensorFlow). Ours treat an int rate as a float,
and, like Keras', take a tensor or a variable, a variable being read at
every call.
"""

import dataclasses
import inspect
import json
from collections.abc import Callable

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lr
from keras_lr import schedules
from tests.schedules import reference as ref

# The dtype of an optimizer's step counter: int64, but JAX without its x64
# mode has no int64.
STEP_DTYPE = "int32" if keras.backend.backend() == "jax" else "int64"


def _is_float32(value):
    """Whether a schedule's value is float32, on any backend."""
    return keras.backend.standardize_dtype(value.dtype) == "float32"


pytestmark = pytest.mark.portable

STEPS = [0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 15, 19, 20, 21, 29, 30, 31, 100]
FAR = [1000, 10**6]
RTOL = 2e-5  # float32 arithmetic against a float64 reference


@dataclasses.dataclass
class RateCase:
    """`make(*rates)` builds the schedule from its rate arguments, and
    `reference(step, *rates)` is its closed form in Python floats."""

    id: str
    rates: tuple[int, ...]
    make: Callable[..., keras.optimizers.schedules.LearningRateSchedule]
    reference: Callable[..., float]
    # Whether the rates may be tensors (nested constants must be numbers).
    tensors: bool = True


RATE_CASES = [
    RateCase(
        "exponential",
        (2,),
        lambda a: schedules.ExponentialDecay(a, 10, 0.5),
        lambda s, a: ref.exponential(s, a, 10, 0.5),
    ),
    RateCase(
        "inverse_time",
        (2,),
        lambda a: schedules.InverseTimeDecay(a, 10, 0.5, staircase=True),
        lambda s, a: ref.inverse_time(s, a, 10, 0.5, True),
    ),
    RateCase(
        "polynomial",
        (3, 1),
        lambda a, b: schedules.PolynomialDecay(a, 10, b, power=0.5),
        lambda s, a, b: ref.polynomial(s, a, 10, b, 0.5),
    ),
    RateCase(
        "piecewise",
        (3, 2, 1),
        lambda *v: schedules.PiecewiseConstantDecay([10, 20], list(v)),
        lambda s, *v: ref.piecewise(s, [10, 20], list(v)),
    ),
    RateCase(
        "cosine",
        (2,),
        lambda a: schedules.CosineDecay(a, 20, alpha=0.1),
        lambda s, a: ref.cosine(s, a, 20, 0.1),
    ),
    RateCase(
        "cosine_warmup",
        (1, 4),
        lambda a, b: schedules.CosineDecay(
            a, 20, warmup_target=b, warmup_steps=5
        ),
        lambda s, a, b: ref.cosine(s, a, 20, 0.0, b, 5),
    ),
    RateCase(
        "cosine_restarts",
        (2,),
        lambda a: schedules.CosineDecayRestarts(a, 10, 2.0, 0.5, 0.1),
        lambda s, a: ref.cosine_restarts(s, a, 10, 2.0, 0.5, 0.1),
    ),
    RateCase(
        "gaussian",
        (2,),
        lambda a: schedules.GaussianDecay(a, 10, alpha=0.1),
        lambda s, a: ref.gaussian(s, a, 10, 0.1),
    ),
    RateCase(
        "cyclical",
        (1, 5),
        lambda a, b: schedules.CyclicalLearningRate(a, b, 4),
        lambda s, a, b: ref.torch_cyclic(s, a, b, 4),
    ),
    RateCase(
        "cyclical_triangular2",
        (1, 5),
        lambda a, b: schedules.CyclicalLearningRate(
            a, b, 4, mode="triangular2", step_size_down=6
        ),
        lambda s, a, b: ref.torch_cyclic(s, a, b, 4, 6, "triangular2"),
    ),
    RateCase(
        "one_cycle",
        (25,),
        lambda a: schedules.OneCycle(a, 10),
        lambda s, a: ref.torch_one_cycle(min(s, 9), a, 10),
    ),
    RateCase(
        "one_cycle_linear_three_phase",
        (25,),
        lambda a: schedules.OneCycle(
            a, 20, pct_start=0.25, anneal_strategy="linear", three_phase=True
        ),
        lambda s, a: ref.torch_one_cycle(
            min(s, 19), a, 20, 0.25, 25.0, 1e4, "linear", True
        ),
    ),
    RateCase(
        "linear_warmup",
        (1, 4),
        lambda a, b: schedules.LinearWarmup(
            schedules.ExponentialDecay(b, 10, 0.5), 5, initial_learning_rate=a
        ),
        lambda s, a, b: ref.linear_warmup(
            s, lambda t: ref.exponential(t, b, 10, 0.5), 5, a
        ),
    ),
    RateCase(
        "linear_warmup_constant",
        (0, 3),
        lambda a, b: schedules.LinearWarmup(b, 5, initial_learning_rate=a),
        lambda s, a, b: ref.linear_warmup(s, lambda t: b, 5, a),
        tensors=False,
    ),
    RateCase(
        "joined",
        (0, 2, 1),
        lambda a, b, c: schedules.JoinedSchedule(
            [schedules.PolynomialDecay(a, 10, b), c], [10]
        ),
        lambda s, a, b, c: ref.joined(
            s, [lambda t: ref.polynomial(t, a, 10, b), lambda t: c], [10]
        ),
        tensors=False,
    ),
    RateCase(
        "joined_constant_first",
        (1, 2),
        lambda a, b: schedules.JoinedSchedule(
            [a, schedules.CosineDecay(b, 20)], [10]
        ),
        lambda s, a, b: ref.joined(
            s, [lambda t: a, lambda t: ref.cosine(t, b, 20)], [10]
        ),
        tensors=False,
    ),
    *[
        RateCase(
            f"warmup_stable_decay_{shape}",
            (4, 1, 2),
            lambda p, a, e, shape=shape: schedules.WarmupStableDecay(
                p,
                5,
                5,
                10,
                initial_learning_rate=a,
                end_learning_rate=e,
                decay_shape=shape,
            ),
            lambda s, p, a, e, shape=shape: ref.warmup_stable_decay(
                s, p, 5, 5, 10, a, e, shape
            ),
        )
        for shape in ("1-sqrt", "cosine")
    ],
    RateCase(
        "scaled_constant",
        (2,),
        lambda a: schedules.ScaledSchedule(a, 0.5),
        lambda s, a: 0.5 * a,
        tensors=False,
    ),
]
RATE_IDS = [case.id for case in RATE_CASES]
TENSOR_CASES = [case for case in RATE_CASES if case.tensors]
TENSOR_IDS = [case.id for case in TENSOR_CASES]


def values(schedule, steps):
    return [
        schedule(keras.ops.convert_to_tensor(step, dtype=STEP_DTYPE))
        for step in steps
    ]


def as_numpy(outputs):
    return np.array([float(keras.ops.convert_to_numpy(v)) for v in outputs])


def reference(case, steps, scale=1.0):
    rates = [scale * float(r) for r in case.rates]
    return np.array([case.reference(s, *rates) for s in steps])


def _assert_reference(case, got, steps, scale=1.0, rtol=RTOL):
    peak = scale * max(case.rates)
    np.testing.assert_allclose(
        got, reference(case, steps, scale), rtol=rtol, atol=1e-7 * peak
    )


def _rate_classes():
    """Public classes with a rate argument a tensor could be given for."""
    names = {"initial_learning_rate", "maximal_learning_rate", "values"}
    picked = set()
    for name in keras_lr.schedules.__all__:
        cls = getattr(keras_lr.schedules, name)
        if names & set(inspect.signature(cls.__init__).parameters):
            picked.add(cls)
    return picked


def test_every_public_schedule_has_an_integer_case():
    public = {
        getattr(keras_lr.schedules, name) for name in keras_lr.schedules.__all__
    }
    assert {type(case.make(*case.rates)) for case in RATE_CASES} == public


def test_every_schedule_with_a_rate_has_a_tensor_case():
    covered = {type(case.make(*case.rates)) for case in TENSOR_CASES}
    assert _rate_classes() <= covered
    assert schedules.OneCycle in covered


# Integer rates.


@pytest.mark.parametrize("case", RATE_CASES, ids=RATE_IDS)
def test_int_rates_equal_float_rates(case):
    floats = case.make(*[float(r) for r in case.rates])
    expected = as_numpy(values(floats, STEPS + FAR))
    python_ints = case.make(*case.rates)
    numpy_ints = case.make(*[np.int64(r) for r in case.rates])
    text = json.dumps(keras.saving.serialize_keras_object(python_ints))
    reloaded = keras.saving.deserialize_keras_object(json.loads(text))
    for schedule in (python_ints, numpy_ints, reloaded):
        got = values(schedule, STEPS + FAR)
        assert all(_is_float32(value) for value in got)
        np.testing.assert_array_equal(as_numpy(got), expected)
    _assert_reference(case, expected[: len(STEPS)], STEPS)


def test_cyclical_int_rates_climb_and_fall():
    """The report: `CyclicalLearningRate(1, 5, 4)` gave [1, 1, 1, 1, 5]."""
    schedule = schedules.CyclicalLearningRate(1, 5, 4)
    got = as_numpy(values(schedule, range(11)))
    np.testing.assert_array_equal(got, [1, 2, 3, 4, 5, 4, 3, 2, 1, 2, 3])
    step = keras.ops.convert_to_tensor(1, dtype=STEP_DTYPE)
    assert _is_float32(schedule(step))


def test_one_cycle_int_rate_is_computed():
    """The report: `OneCycle(25, 10)` raised a dtype error in TensorFlow."""
    schedule = schedules.OneCycle(25, 10)
    got = as_numpy(values(schedule, range(12)))
    expected = [ref.torch_one_cycle(min(s, 9), 25.0, 10) for s in range(12)]
    np.testing.assert_allclose(got, expected, rtol=RTOL)
    assert got[2] == 25.0
    assert schedule.initial_learning_rate == 1.0


@pytest.mark.tensorflow_only
def test_int_rates_trace_under_xla():
    schedule = schedules.OneCycle(25, 10, anneal_strategy="linear")
    step = tf.Variable(0, dtype=tf.int64)

    @tf.function(jit_compile=True)
    def compiled():
        return schedule(step)

    for s in [0, 1, 2, 5, 9, 50]:
        step.assign(s)
        value = compiled()
        assert keras.backend.standardize_dtype(value.dtype) == "float32"
        np.testing.assert_allclose(
            float(value),
            ref.torch_one_cycle(min(s, 9), 25.0, 10, anneal="linear"),
            rtol=RTOL,
        )


INT_HYPERPARAMETERS = {
    "decay_rate": (
        lambda: schedules.ExponentialDecay(0.5, 10, 1),
        lambda: schedules.ExponentialDecay(0.5, 10, 1.0),
    ),
    "inverse_decay_rate": (
        lambda: schedules.InverseTimeDecay(0.5, 10, 2),
        lambda: schedules.InverseTimeDecay(0.5, 10, 2.0),
    ),
    "end_rate_and_power": (
        lambda: schedules.PolynomialDecay(0.5, 10, 0, power=2),
        lambda: schedules.PolynomialDecay(0.5, 10, 0.0, power=2.0),
    ),
    "cosine_alpha": (
        lambda: schedules.CosineDecay(0.5, 10, alpha=1),
        lambda: schedules.CosineDecay(0.5, 10, alpha=1.0),
    ),
    "restart_factors": (
        lambda: schedules.CosineDecayRestarts(
            0.5, 10, t_mul=1, m_mul=1, alpha=0
        ),
        lambda: schedules.CosineDecayRestarts(
            0.5, 10, t_mul=1.0, m_mul=1.0, alpha=0.0
        ),
    ),
    "gaussian_alpha": (
        lambda: schedules.GaussianDecay(0.5, 10, alpha=0),
        lambda: schedules.GaussianDecay(0.5, 10, alpha=0.0),
    ),
    "gamma": (
        lambda: schedules.CyclicalLearningRate(
            0.1, 0.5, 4, mode="exp_range", gamma=1
        ),
        lambda: schedules.CyclicalLearningRate(
            0.1, 0.5, 4, mode="exp_range", gamma=1.0
        ),
    ),
    "div_factors": (
        lambda: schedules.OneCycle(0.5, 10, div_factor=5, final_div_factor=100),
        lambda: schedules.OneCycle(
            0.5, 10, div_factor=5.0, final_div_factor=100.0
        ),
    ),
}


@pytest.mark.parametrize(
    "pair", INT_HYPERPARAMETERS.values(), ids=INT_HYPERPARAMETERS.keys()
)
def test_int_factors_equal_float_factors(pair):
    make_int, make_float = pair
    got = values(make_int(), STEPS + FAR)
    assert all(_is_float32(value) for value in got)
    np.testing.assert_array_equal(
        as_numpy(got), as_numpy(values(make_float(), STEPS + FAR))
    )


# Tensor and variable rates.


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("case", TENSOR_CASES, ids=TENSOR_IDS)
def test_tensor_rates(case):
    floats = case.make(*[float(r) for r in case.rates])
    expected = as_numpy(values(floats, STEPS + FAR))
    # A float32 tensor is the float's value; an int tensor becomes one.
    for wrap in (tf.constant, lambda r: tf.constant(int(r))):
        schedule = case.make(*[wrap(float(r)) for r in case.rates])
        got = values(schedule, STEPS + FAR)
        assert all(_is_float32(value) for value in got)
        np.testing.assert_array_equal(as_numpy(got), expected)
    _assert_reference(case, expected[: len(STEPS)], STEPS)
    # A float64 tensor keeps float64, against the float64 reference.
    schedule = case.make(
        *[tf.constant(float(r), dtype=tf.float64) for r in case.rates]
    )
    got = values(schedule, STEPS + FAR)
    assert all(value.dtype == tf.float64 for value in got)
    _assert_reference(case, as_numpy(got), STEPS + FAR, rtol=1e-10)
    # The config holds the tensors' values as Python floats.
    schedule = case.make(*[tf.constant(r / 8) for r in case.rates])
    config = json.loads(json.dumps(schedule.get_config()))
    assert config == case.make(*[r / 8 for r in case.rates]).get_config()


def _with_variables(case):
    variables = [keras.Variable(float(r)) for r in case.rates]
    return case.make(*variables), variables


@pytest.mark.parametrize("case", TENSOR_CASES, ids=TENSOR_IDS)
def test_variable_rates_are_read_at_call_time(case):
    schedule, variables = _with_variables(case)
    before = as_numpy(values(schedule, STEPS + FAR))
    np.testing.assert_array_equal(
        before,
        as_numpy(values(case.make(*map(float, case.rates)), STEPS + FAR)),
    )
    for variable in variables:
        variable.assign(0.5 * float(variable.numpy()))
    got = values(schedule, STEPS + FAR)
    assert all(_is_float32(value) for value in got)
    halved = case.make(*[0.5 * r for r in case.rates])
    np.testing.assert_array_equal(
        as_numpy(got), as_numpy(values(halved, STEPS + FAR))
    )
    _assert_reference(case, as_numpy(got[: len(STEPS)]), STEPS, scale=0.5)
    assert not np.array_equal(as_numpy(got), before)
    # The config holds the current values, JSON-native, as Keras'
    # optimizers save a variable learning rate.
    text = json.dumps(keras.saving.serialize_keras_object(schedule))
    assert "__tensor__" not in text
    assert json.loads(json.dumps(schedule.get_config())) == halved.get_config()
    clone = keras.saving.deserialize_keras_object(json.loads(text))
    np.testing.assert_array_equal(
        as_numpy(values(clone, STEPS)), as_numpy(values(halved, STEPS))
    )


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("case", TENSOR_CASES, ids=TENSOR_IDS)
def test_variable_rates_trace_under_xla(case):
    schedule, variables = _with_variables(case)
    step = tf.Variable(0, dtype=tf.int64)

    @tf.function(jit_compile=True)
    def compiled():
        return schedule(step)

    def run():
        out = []
        for s in STEPS + [2**40]:
            step.assign(s)
            out.append(float(compiled()))
        return np.array(out)

    first = run()
    for variable in variables:
        variable.assign(0.5 * float(variable.numpy()))
    second = run()
    steps = STEPS + [2**40]
    halved = case.make(*[0.5 * r for r in case.rates])
    # XLA's cos() differs from TensorFlow's by a few float32 ulps.
    np.testing.assert_allclose(
        second, as_numpy(values(halved, steps)), rtol=1e-5, atol=1e-12
    )
    np.testing.assert_allclose(first, 2.0 * second, rtol=1e-5, atol=1e-12)
    assert np.all(np.isfinite(second))
    assert not np.allclose(first, second)


def test_variable_rate_attribute_is_the_variable():
    variable = keras.Variable(0.1)
    schedule = schedules.CosineDecay(variable, 100)
    assert schedule.initial_learning_rate is variable
    assert schedule.get_config()["initial_learning_rate"] == float(
        np.float32(0.1)
    )


def test_one_cycle_properties_follow_a_variable_rate():
    variable = keras.Variable(0.5)
    schedule = schedules.OneCycle(variable, 100, div_factor=5.0)
    assert schedule.initial_learning_rate == 0.1
    variable.assign(1.0)
    assert schedule.initial_learning_rate == 0.2
    assert schedule.minimal_learning_rate == 0.2 / 1e4


def test_variable_rate_in_an_optimizer():
    variable = keras.Variable(0.2)
    schedule = schedules.ExponentialDecay(variable, 10, 0.5)
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    config = json.loads(json.dumps(optimizer.get_config()))
    clone = keras.optimizers.SGD.from_config(config)
    clone_rate = keras.ops.convert_to_numpy(clone.learning_rate)
    np.testing.assert_allclose(float(clone_rate), 0.2, rtol=1e-7)
    variable.assign(0.4)
    rate = keras.ops.convert_to_numpy(optimizer.learning_rate)
    np.testing.assert_allclose(float(rate), 0.4, rtol=1e-7)


@pytest.mark.tensorflow_only
def test_symbolic_tensor_rate_inside_a_function():
    """A rate made inside a traced function is checked when it runs."""

    @tf.function
    def rate(peak):
        return schedules.CyclicalLearningRate(0.1 * peak, peak, 4)(
            tf.constant(2, tf.int64)
        )

    np.testing.assert_allclose(float(rate(tf.constant(1.0))), 0.55, rtol=1e-6)
