"""Bad values are rejected at construction with the Keras message form."""

import keras
import pytest
import tensorflow as tf

from keras_lr import schedules
from keras_lr.schedules.warmup_stable_decay import cooldown_factor

pytestmark = pytest.mark.portable

cosine = keras.optimizers.schedules.CosineDecay(0.1, 100)

BAD = [
    # (factory, exception, message fragment)
    (
        lambda: schedules.ExponentialDecay(0.1, 0, 0.9),
        ValueError,
        "Argument `decay_steps` must be > 0. Received: decay_steps=0",
    ),
    (
        lambda: schedules.ExponentialDecay(-0.1, 10, 0.9),
        ValueError,
        "Argument `initial_learning_rate` must be >= 0. "
        "Received: initial_learning_rate=-0.1",
    ),
    (
        lambda: schedules.ExponentialDecay(0.1, "10", 0.9),
        TypeError,
        "Argument `decay_steps` must be a Python number. "
        "Received: decay_steps='10' (of type str)",
    ),
    (
        lambda: schedules.ExponentialDecay(0.1, 10, 0.9, staircase="yes"),
        TypeError,
        "Argument `staircase` must be a bool",
    ),
    (
        lambda: schedules.InverseTimeDecay(0.1, -5, 0.5),
        ValueError,
        "Argument `decay_steps` must be > 0. Received: decay_steps=-5",
    ),
    (
        lambda: schedules.PolynomialDecay(0.1, 10, power=-1.0),
        ValueError,
        "Argument `power` must be >= 0. Received: power=-1.0",
    ),
    (
        lambda: schedules.PiecewiseConstantDecay([10, 20], [0.1, 0.01]),
        ValueError,
        "Argument `values` must have exactly one more element than "
        "`boundaries`",
    ),
    (
        lambda: schedules.PiecewiseConstantDecay([20, 10], [0.1, 0.01, 0.001]),
        ValueError,
        "Argument `boundaries` must be strictly increasing. "
        "Received: boundaries=[20, 10]",
    ),
    (
        lambda: schedules.PiecewiseConstantDecay([10], [0.1, -0.01]),
        ValueError,
        "Argument `values` must be >= 0",
    ),
    (
        lambda: schedules.PiecewiseConstantDecay(10, [0.1, 0.01]),
        TypeError,
        "Argument `boundaries` must be a list of Python numbers",
    ),
    (
        lambda: schedules.CosineDecay(0.1, 100, alpha=1.5),
        ValueError,
        "Argument `alpha` must be in [0.0, 1.0]. Received: alpha=1.5",
    ),
    (
        lambda: schedules.CosineDecay(0.1, 100, warmup_steps=-1),
        ValueError,
        "Argument `warmup_steps` must be >= 0. Received: warmup_steps=-1",
    ),
    (
        lambda: schedules.CosineDecayRestarts(0.1, 0),
        ValueError,
        "Argument `first_decay_steps` must be > 0",
    ),
    (
        lambda: schedules.CosineDecayRestarts(0.1, 100, t_mul=0.5),
        ValueError,
        "Argument `t_mul` must be >= 1. Received: t_mul=0.5",
    ),
    (
        lambda: schedules.GaussianDecay(0.1, 0),
        ValueError,
        "Argument `decay_steps` must be > 0. Received: decay_steps=0",
    ),
    (
        lambda: schedules.CyclicalLearningRate(0.1, 0.1, 10),
        ValueError,
        "Argument `maximal_learning_rate` must be > `initial_learning_rate`. "
        "Received: maximal_learning_rate=0.1, initial_learning_rate=0.1",
    ),
    (
        lambda: schedules.CyclicalLearningRate(0.01, 0.1, 10, mode="sine"),
        ValueError,
        "Argument `mode` must be one of 'triangular', 'triangular2', "
        "'exp_range'. Received: mode='sine'",
    ),
    (
        lambda: schedules.CyclicalLearningRate(0.01, 0.1, 0),
        ValueError,
        "Argument `step_size` must be > 0. Received: step_size=0",
    ),
    (
        lambda: schedules.CyclicalLearningRate(0.01, 0.1, 10, step_size_down=0),
        ValueError,
        "Argument `step_size_down` must be > 0",
    ),
    (
        lambda: schedules.CyclicalLearningRate(0.01, 0.1, 10, gamma=1.5),
        ValueError,
        "Argument `gamma` must be in (0, 1]. Received: gamma=1.5",
    ),
    (
        lambda: schedules.CyclicalLearningRate(0.01, 0.1, 10, scale_fn=3),
        TypeError,
        "Argument `scale_fn` must be a callable or None",
    ),
    (
        lambda: schedules.OneCycle(0.1, 100, pct_start=1.0),
        ValueError,
        "Argument `pct_start` must be in the open interval (0.0, 1.0). "
        "Received: pct_start=1.0",
    ),
    (
        lambda: schedules.OneCycle(0.1, 100, anneal_strategy="cosine"),
        ValueError,
        "Argument `anneal_strategy` must be one of 'cos', 'linear'. "
        "Received: anneal_strategy='cosine'",
    ),
    (
        lambda: schedules.OneCycle(0.1, 0),
        ValueError,
        "Argument `total_steps` must be > 0. Received: total_steps=0",
    ),
    (
        lambda: schedules.OneCycle(0.1, 100.0),
        TypeError,
        "Argument `total_steps` must be an integer",
    ),
    (
        lambda: schedules.OneCycle(0.1, 3),
        ValueError,
        "Argument `total_steps` is too small for `pct_start`",
    ),
    (
        lambda: schedules.OneCycle(-0.1, 100),
        ValueError,
        "Argument `maximal_learning_rate` must be > 0",
    ),
    (
        lambda: schedules.LinearWarmup(cosine, 0),
        ValueError,
        "Argument `warmup_steps` must be > 0. Received: warmup_steps=0",
    ),
    (
        lambda: schedules.LinearWarmup("cosine", 10),
        TypeError,
        "Argument `schedule` must be a `keras.optimizers.schedules."
        "LearningRateSchedule` or a Python number",
    ),
    (
        lambda: schedules.JoinedSchedule([cosine, cosine], [100, 200]),
        ValueError,
        "Argument `schedules` must have exactly one more element than "
        "`boundaries`",
    ),
    (
        lambda: schedules.JoinedSchedule([cosine, cosine, 0.1], [200, 100]),
        ValueError,
        "Argument `boundaries` must be strictly increasing",
    ),
    (
        lambda: schedules.JoinedSchedule([cosine, cosine], [0]),
        ValueError,
        "Argument `boundaries` must hold steps > 0",
    ),
    (
        lambda: schedules.JoinedSchedule([cosine, None], [10]),
        TypeError,
        "Argument `schedules[1]` must be a `keras.optimizers.schedules."
        "LearningRateSchedule` or a Python number",
    ),
    (
        lambda: schedules.ScaledSchedule(cosine, scale=-1.0),
        ValueError,
        "Argument `scale` must be >= 0. Received: scale=-1.0",
    ),
    (
        lambda: schedules.WarmupStableDecay(0.1, 10, 10, -1),
        ValueError,
        "Argument `decay_steps` must be >= 0. Received: decay_steps=-1",
    ),
    (
        lambda: schedules.WarmupStableDecay(0.1, -5, 10, 10),
        ValueError,
        "Argument `warmup_steps` must be >= 0. Received: warmup_steps=-5",
    ),
    (
        lambda: schedules.WarmupStableDecay(0.1, 10, "100", 10),
        TypeError,
        "Argument `stable_steps` must be a Python number. "
        "Received: stable_steps='100' (of type str)",
    ),
    (
        lambda: schedules.WarmupStableDecay(0.1, 10, float("inf"), 10),
        ValueError,
        "Argument `stable_steps` must be finite",
    ),
    (
        lambda: schedules.WarmupStableDecay(-0.1, 10, 10, 10),
        ValueError,
        "Argument `peak_learning_rate` must be >= 0. "
        "Received: peak_learning_rate=-0.1",
    ),
    (
        lambda: schedules.WarmupStableDecay(
            0.1, 10, 10, 10, initial_learning_rate=-1.0
        ),
        ValueError,
        "Argument `initial_learning_rate` must be >= 0. "
        "Received: initial_learning_rate=-1.0",
    ),
    (
        lambda: schedules.WarmupStableDecay(
            0.1, 10, 10, 10, end_learning_rate=keras.Variable(-0.5)
        ),
        ValueError,
        "Argument `end_learning_rate` must be >= 0. "
        "Received: end_learning_rate=-0.5 (of type Variable)",
    ),
    (
        lambda: schedules.WarmupStableDecay(
            0.1, 10, 10, 10, decay_shape="sqrt"
        ),
        ValueError,
        "Argument `decay_shape` must be one of 'linear', 'cosine', "
        "'1-sqrt'. Received: decay_shape='sqrt'",
    ),
    (
        lambda: cooldown_factor(0.5, "exponential"),
        ValueError,
        "Argument `shape` must be one of 'linear', 'cosine', '1-sqrt'. "
        "Received: shape='exponential'",
    ),
    # Rates given as tensors and variables: checked on their value now.
    (
        lambda: schedules.ExponentialDecay(keras.Variable(-0.5), 10, 0.9),
        ValueError,
        "Argument `initial_learning_rate` must be >= 0. "
        "Received: initial_learning_rate=-0.5 (of type Variable)",
    ),
    (
        lambda: schedules.OneCycle(tf.constant(0.0), 100),
        ValueError,
        "Argument `maximal_learning_rate` must be > 0. "
        "Received: maximal_learning_rate=0.0 (of type EagerTensor)",
    ),
    (
        lambda: schedules.CyclicalLearningRate(
            keras.Variable(0.5), tf.constant(0.25), 10
        ),
        ValueError,
        "Argument `maximal_learning_rate` must be > `initial_learning_rate`. "
        "Received: maximal_learning_rate=0.25, initial_learning_rate=0.5",
    ),
    (
        lambda: schedules.PolynomialDecay(0.1, 10, keras.Variable(-1.0)),
        ValueError,
        "Argument `end_learning_rate` must be >= 0. "
        "Received: end_learning_rate=-1.0",
    ),
    (
        lambda: schedules.CosineDecay(
            0.0, 10, warmup_target=tf.constant(float("nan"))
        ),
        ValueError,
        "Argument `warmup_target` must be finite",
    ),
    (
        lambda: schedules.LinearWarmup(
            cosine, 10, initial_learning_rate=tf.constant(-1.0)
        ),
        ValueError,
        "Argument `initial_learning_rate` must be >= 0",
    ),
    (
        lambda: schedules.PiecewiseConstantDecay(
            [10], [0.1, keras.Variable(-0.5)]
        ),
        ValueError,
        "Argument `values` must be >= 0. Received: values=-0.5",
    ),
    (
        lambda: schedules.PiecewiseConstantDecay([10], 0.1),
        TypeError,
        "Argument `values` must be a list of Python numbers, scalar tensors "
        "or `keras.Variable`s. Received: values=0.1 (of type float)",
    ),
    (
        lambda: schedules.CosineDecay(tf.constant([0.1, 0.2]), 10),
        ValueError,
        "Argument `initial_learning_rate` must be a scalar. "
        "Received: initial_learning_rate of shape (2,)",
    ),
    (
        lambda: schedules.GaussianDecay(tf.constant(True), 10),
        TypeError,
        "Argument `initial_learning_rate` must be a Python number, a scalar "
        "tensor or a `keras.Variable`",
    ),
    (
        lambda: schedules.ExponentialDecay("0.1", 10, 0.9),
        TypeError,
        "Argument `initial_learning_rate` must be a Python number, a scalar "
        "tensor or a `keras.Variable`. Received: initial_learning_rate='0.1' "
        "(of type str)",
    ),
]


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("factory, error, message", BAD)
def test_bad_values_rejected_at_construction(factory, error, message):
    with pytest.raises(error) as info:
        factory()
    assert message in str(info.value)


def test_nan_rate_rejected():
    with pytest.raises(ValueError, match="must be finite"):
        schedules.GaussianDecay(float("nan"), 10)


def test_bool_is_not_a_number():
    with pytest.raises(TypeError, match="Argument `decay_steps`"):
        schedules.GaussianDecay(0.1, True)
