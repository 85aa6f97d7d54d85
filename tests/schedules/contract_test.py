"""The contract every keras_lr schedule keeps, checked for each class."""

import inspect
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lr
from tests.schedules.cases import CASE_IDS
from tests.schedules.cases import CASES

pytestmark = pytest.mark.portable

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
PROBE_STEPS = [0, 1, 7, 99, 100, 101, 333, 1000, 5000]


def _one_per_class():
    seen, picked = set(), []
    for case in CASES:
        name = type(case.make()).__name__
        if name not in seen:
            seen.add(name)
            picked.append(case)
    return picked


PER_CLASS = _one_per_class()
PER_CLASS_IDS = [case.id for case in PER_CLASS]


def lr_at(schedule, steps=PROBE_STEPS):
    return np.array([float(schedule(tf.constant(s, tf.int64))) for s in steps])


def test_every_public_schedule_is_covered():
    public = {
        getattr(keras_lr.schedules, name) for name in keras_lr.schedules.__all__
    }
    covered = {type(case.make()) for case in CASES}
    assert public == covered


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_config_is_constructor_arguments(case):
    schedule = case.make()
    config = schedule.get_config()
    params = inspect.signature(type(schedule).__init__).parameters
    assert set(config) == set(params) - {"self"}
    for key, value in config.items():
        attribute = getattr(schedule, key)
        if isinstance(value, dict) or (
            isinstance(value, list) and value and isinstance(value[0], dict)
        ):
            continue  # nested schedules: compared through their values below
        assert attribute == value, key
    json.dumps(config)  # JSON-native


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_from_config_round_trip(case):
    schedule = case.make()
    clone = type(schedule).from_config(schedule.get_config())
    np.testing.assert_array_equal(lr_at(clone), lr_at(schedule))
    assert clone.get_config() == schedule.get_config()


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_json_round_trip(case):
    schedule = case.make()
    text = json.dumps(keras.saving.serialize_keras_object(schedule))
    clone = keras.saving.deserialize_keras_object(json.loads(text))
    assert type(clone) is type(schedule)
    np.testing.assert_array_equal(lr_at(clone), lr_at(schedule))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_optimizer_config_round_trip(case):
    optimizer = keras.optimizers.Adam(learning_rate=case.make())
    config = json.loads(json.dumps(optimizer.get_config()))
    clone = keras.optimizers.Adam.from_config(config)
    restored = clone._learning_rate
    np.testing.assert_array_equal(lr_at(restored), lr_at(case.make()))


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_xla_with_int64_variable_step(case):
    schedule = case.make()
    step = tf.Variable(0, dtype=tf.int64)

    @tf.function(jit_compile=True)
    def compiled():
        return schedule(step)

    for s in PROBE_STEPS + [2**40]:
        step.assign(s)
        got = float(compiled())
        assert np.isfinite(got)
        expected = float(schedule(tf.constant(s, tf.int64)))
        # XLA's cos() differs from TensorFlow's by a few float32 ulps.
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-12)


def _as_float64(config):
    """The same config with every rate given as `numpy.float64`."""
    if isinstance(config, dict):
        out = {}
        for key, value in config.items():
            if key in (
                "initial_learning_rate",
                "maximal_learning_rate",
                "peak_learning_rate",
            ):
                out[key] = np.float64(value)
            elif key == "values":
                out[key] = [np.float64(v) for v in value]
            elif key == "schedules":
                out[key] = [
                    _as_float64(v) if isinstance(v, dict) else np.float64(v)
                    for v in value
                ]
            elif key in ("schedule", "config"):
                out[key] = (
                    _as_float64(value)
                    if isinstance(value, dict)
                    else np.float64(value)
                )
            else:
                out[key] = value
        return out
    return config


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float64_is_kept(case):
    schedule = case.make()
    schedule64 = type(schedule).from_config(_as_float64(schedule.get_config()))
    steps = [s for s in case.steps if s < 2**24]
    for s in steps:
        value = schedule64(tf.constant(s, tf.int64))
        assert value.dtype == tf.float64
    got = np.array([float(schedule64(tf.constant(s, tf.int64))) for s in steps])
    expected = np.array([case.reference(s) for s in steps])
    # ScaledSchedule keeps its factor in float32 (a runtime variable).
    rtol = 1e-7 if case.id.startswith("scaled") else 1e-10
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-15)


def _tiny_model():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    return model


def _data(n=16):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = rng.normal(size=(n, 1)).astype("float32")
    return x, y


class _RecordLR(keras.callbacks.Callback):
    """Test-only: the rate each optimizer step used (read after the step)."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("case", PER_CLASS, ids=PER_CLASS_IDS)
def test_mirrored_strategy_sees_same_rates(case, two_cpu_strategy):
    x, y = _data(32)

    def run(strategy):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            model = _tiny_model()
            model.compile(keras.optimizers.SGD(case.make()), "mse")
        record = _RecordLR()
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=2,
            verbose=0,
            shuffle=False,
            callbacks=[record],
        )
        assert int(model.optimizer.iterations.numpy()) == 8
        return np.array(record.rates)

    single = run(tf.distribute.get_strategy())
    mirrored = run(two_cpu_strategy)
    expected = np.array([case.reference(s) for s in range(8)])
    np.testing.assert_allclose(single, expected, rtol=2e-5, atol=1e-12)
    np.testing.assert_allclose(mirrored, single, rtol=1e-7, atol=0)


LOADER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    import keras_lr  # registers the schedules
    out = {}
    x = np.load(sys.argv[2])
    y = np.load(sys.argv[3])
    for path in sys.argv[4:]:
        model = keras.models.load_model(path)
        optimizer = model.optimizer
        before = (int(optimizer.iterations), float(optimizer.learning_rate))
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        out[path] = {
            "class": type(optimizer._learning_rate).__name__,
            "iterations": before[0],
            "lr": before[1],
            "after_iterations": int(optimizer.iterations),
            "after_lr": float(optimizer.learning_rate),
            "weights": [w.tolist() for w in model.get_weights()],
        }
    json.dump(out, open(sys.argv[1], "w"))
    """
)


def test_save_and_load_model_in_fresh_process(tmp_path):
    x, y = _data(16)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    expected = {}
    for case in PER_CLASS:
        keras.utils.set_random_seed(2)
        model = _tiny_model()
        model.compile(keras.optimizers.Adam(case.make()), "mse")
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
        path = str(tmp_path / f"{case.id}.keras")
        model.save(path)
        lr = float(model.optimizer.learning_rate)
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        expected[path] = (case, lr, model.get_weights())
    script = tmp_path / "load.py"
    script.write_text(LOADER)
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "out.json"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
            *expected,
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    loaded = json.loads((tmp_path / "out.json").read_text())
    for path, (case, lr, weights) in expected.items():
        got = loaded[path]
        assert got["class"] == type(case.make()).__name__, case.id
        assert got["iterations"] == 6, case.id
        np.testing.assert_allclose(got["lr"], lr, rtol=1e-7, err_msg=case.id)
        np.testing.assert_allclose(
            got["lr"], case.reference(6), rtol=2e-5, atol=1e-12
        )
        assert got["after_iterations"] == 8, case.id
        np.testing.assert_allclose(
            got["after_lr"], case.reference(8), rtol=2e-5, atol=1e-12
        )
        for a, b in zip(got["weights"], weights):
            np.testing.assert_allclose(np.array(a), b, rtol=1e-6, atol=1e-7)


@keras.saving.register_keras_serializable(package="keras_lr_tests")
def halve_every_cycle(cycle):
    return keras.ops.power(0.5, cycle - 1.0)


def test_custom_scale_fn_survives_model_save(tmp_path):
    """tensorflow-addons' CLR could not be reloaded (its config held a
    lambda); a registered scale function round-trips through `.keras`."""
    schedule = keras_lr.schedules.CyclicalLearningRate(
        1e-3, 1e-2, 10, scale_fn=halve_every_cycle, scale_mode="cycle"
    )
    builtin = keras_lr.schedules.CyclicalLearningRate(
        1e-3, 1e-2, 10, mode="triangular2"
    )
    steps = [0, 5, 10, 19, 20, 25, 47, 61]
    np.testing.assert_allclose(
        lr_at(schedule, steps), lr_at(builtin, steps), rtol=1e-6
    )
    model = _tiny_model()
    model.compile(keras.optimizers.SGD(schedule), "mse")
    path = str(tmp_path / "clr.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    restored = loaded.optimizer._learning_rate
    assert restored.scale_fn is halve_every_cycle
    np.testing.assert_allclose(
        lr_at(restored, steps), lr_at(builtin, steps), rtol=1e-6
    )
