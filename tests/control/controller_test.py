"""The rate controller: one owner of the rate, saved with the optimizer,
never traced again by the callbacks that drive it."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_lr
from keras_lr.control import installed_controller
from keras_lr.control import rate_controller
from tests.callbacks import helpers

pytestmark = pytest.mark.portable

STEPS = 6
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


class Counting:
    """A loss that counts its Python calls: one per trace of the train
    function (and none per step)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, y_true, y_pred):
        self.calls += 1
        return ops.mean(y_pred)


def counted_model(optimizer, counter):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")]
    )
    model.compile(optimizer, loss=counter)
    return model


class Script(keras.callbacks.Callback):
    """Writes a scripted `val_loss` into the epoch logs."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch % len(self.values)]


def fit(model, callbacks, epochs=2):
    x, y = helpers.zeros_data(STEPS)
    return model.fit(
        x,
        y,
        batch_size=helpers.BATCH,
        epochs=epochs,
        verbose=0,
        shuffle=False,
        callbacks=callbacks,
    )


CALLBACKS = {
    "CyclicLR": lambda: [keras_lr.callbacks.CyclicLR(0.01, 0.1, 3)],
    "OneCycleLR": lambda: [keras_lr.callbacks.OneCycleLR(0.1)],
    "ReduceLROnPlateau": lambda: [
        Script([1.0]),
        keras_lr.callbacks.ReduceLROnPlateau(patience=1, factor=0.5),
    ],
    "DivergenceGuard": lambda: [keras_lr.callbacks.DivergenceGuard()],
    "LearningRateLogger": lambda: [keras_lr.callbacks.LearningRateLogger()],
    "all": lambda: [
        Script([1.0]),
        keras_lr.callbacks.CyclicLR(0.01, 0.1, 3),
        keras_lr.callbacks.ReduceLROnPlateau(patience=1, factor=0.5),
        keras_lr.callbacks.LearningRateLogger(),
    ],
}


@pytest.mark.parametrize("name", sorted(CALLBACKS))
@pytest.mark.parametrize(
    "rate", [0.05, keras.optimizers.schedules.ExponentialDecay(0.05, 5, 0.5)]
)
def test_a_second_fit_traces_nothing_new(name, rate):
    counter = Counting()
    model = counted_model(keras.optimizers.SGD(rate, momentum=0.9), counter)
    callbacks = CALLBACKS[name]()
    fit(model, callbacks)
    after_first = counter.calls
    fit(model, callbacks)
    assert counter.calls == after_first
    # No more traces than Keras makes with no callback at all (the
    # controller is in place before the first; Keras traces twice when the
    # first trace builds the momentum slots, which DivergenceGuard builds
    # beforehand).
    plain = Counting()
    fit(counted_model(keras.optimizers.SGD(rate, momentum=0.9), plain), [])
    assert after_first <= plain.calls


def test_float_rate_cut_is_keras_rounding_and_stays_in_the_variable():
    model = helpers.bias_model(keras.optimizers.SGD(0.3))
    controller = rate_controller(model)
    variable = controller.learning_rate
    assert isinstance(variable, keras.Variable)
    # Keras' own variable, still tracked where Keras put it.
    assert model.optimizer.variables[1] is variable
    rate = float(np.float32(0.3))
    for _ in range(20):
        expected = float(np.float32(rate * 0.7))
        assert controller.multiply(0.7) == expected
        rate = expected
    assert controller.multiplier == 1.0
    assert controller.multiply(0.5, floor=0.1) == pytest.approx(0.1)


@pytest.mark.needs_float64
def test_schedule_rate_gets_a_float64_factor_rounded_once():
    schedule = keras.optimizers.schedules.CosineDecay(0.2, 100)
    model = helpers.bias_model(keras.optimizers.SGD(schedule))
    controller = rate_controller(model)
    factor = 1.0
    for _ in range(5):
        controller.multiply(0.3)
        factor *= 0.3
    assert controller.multiplier == pytest.approx(factor, rel=1e-15)
    expected = np.float32(np.float64(np.float32(0.2)) * factor)
    assert controller.current() == float(expected)
    with pytest.raises(TypeError, match="not settable"):
        model.optimizer.learning_rate = 0.1


@pytest.mark.needs_float64
@pytest.mark.parametrize("kind", ["float", "schedule", "curve"])
def test_scale_sets_the_rate_multiply_would(kind):
    def controller_of():
        rate = 0.3
        if kind == "schedule":
            rate = keras.optimizers.schedules.CosineDecay(0.2, 100)
        model = helpers.bias_model(keras.optimizers.SGD(rate))
        controller = rate_controller(model)
        if kind == "curve":
            controller.set_curve(np.linspace(0.5, 0.1, 10), first_step=0)
        return controller

    scaled, multiplied = controller_of(), controller_of()
    for factor in (0.7, 3.0, 0.125):
        scaled.scale(factor)
        multiplied.multiply(factor)
        # Equal rates (the float64 factor may differ in its last bits).
        assert scaled.current() == multiplied.current()
        assert scaled.multiplier == pytest.approx(
            multiplied.multiplier, rel=1e-15
        )
    expected = {"float": 1.0, "schedule": 0.2625, "curve": 0.2625}[kind]
    assert scaled.multiplier == pytest.approx(expected, rel=1e-15)


def test_curve_lookup_clips_and_the_factor_applies():
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    controller = rate_controller(model)
    controller.set_curve([0.5, 0.25, 0.125], first_step=0)
    assert controller.curve_active
    assert controller.current() == 0.5
    controller.multiply(0.5)
    assert controller.current() == 0.25
    recorder = helpers.BiasRecorder()
    fit(model, [recorder], epochs=1)
    # Steps 0, 1, 2 read the table, later steps hold its last value; the
    # factor 0.5 applies to all.
    rates = [0.25, 0.125, 0.0625] + [0.0625] * (STEPS - 3)
    np.testing.assert_allclose(recorder.values, -np.cumsum(rates), rtol=1e-6)
    controller.clear_curve(keep_last=True)
    assert controller.multiplier == 1.0
    assert controller.current() == pytest.approx(0.0625)


def test_current_rate_and_momentum_are_the_next_steps_exactly():
    """`current()` and `current_momentum()` compute on the host what the
    step computes in-graph: equal to the bit, multiplier included."""
    model = helpers.bias_model(keras.optimizers.SGD(0.1, momentum=0.9))
    controller = rate_controller(model)
    rates = np.linspace(0.01, 0.1, 7) / 3
    controller.set_curve(rates, first_step=0)
    controller.set_momentum_curve("momentum", np.linspace(0.95, 0.85, 7), 0)
    controller.multiply(0.7)
    recorder = controller.recorder(0)
    x, y = helpers.zeros_data(1)
    for _ in range(9):  # past the curves' end too
        expected = controller.current(), controller.current_momentum()
        model.train_on_batch(x, y)
        rate, momentum = (float(v) for v in recorder.read(1)[0])
        assert (rate, momentum) == expected
    controller.clear_momentum_curve(keep_last=True)
    assert controller.current_momentum() == pytest.approx(0.85)


@pytest.mark.needs_float64
@pytest.mark.parametrize("on_cpu", [True, False])
def test_curve_rate_is_the_same_read_on_host_or_device(on_cpu):
    """On PyTorch a curve is read on the host when that costs nothing (on
    the CPU) and on the device otherwise; both give every step the
    float64 product rounded once. (`_on_cpu` only matters on PyTorch;
    elsewhere this checks the traced step.)"""
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    controller = rate_controller(model)
    controller._on_cpu = on_cpu
    table = np.float32([0.03, 0.07, 0.011, 0.05])
    controller.set_curve(table, first_step=0)
    controller.scale(0.3)
    recorder = controller.recorder(0)
    x, y = helpers.zeros_data(1)
    for step in range(6):
        model.train_on_batch(x, y)
        expected = np.float32(np.float64(table[min(step, 3)]) * 0.3)
        assert recorder.read(1)[0][0] == expected


@pytest.mark.tensorflow_only
def test_each_curve_is_traced_once_per_step(monkeypatch):
    """The momentum the optimizer reads for every variable, and again for
    the per-step record, is one lookup in TensorFlow's traced step, as is
    the rate: every op there costs at every step. (JAX's compiler merges
    repeated pure lookups itself.)"""
    from keras_lr.control.tables import Curve

    lookups = []
    plain_lookup = Curve.lookup

    def counted(curve, step):
        lookups.append(curve)
        return plain_lookup(curve, step)

    monkeypatch.setattr(Curve, "lookup", counted)
    counter = Counting()
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss=counter)
    x = np.zeros((STEPS * helpers.BATCH, 3), "float32")
    y = np.zeros((STEPS * helpers.BATCH, 1), "float32")
    model.fit(
        x,
        y,
        batch_size=helpers.BATCH,
        verbose=0,
        callbacks=[
            keras_lr.callbacks.CyclicLR(0.01, 0.1, 3),
            keras_lr.callbacks.LearningRateLogger(),
        ],
    )
    assert counter.calls >= 1
    assert len(lookups) == 2 * counter.calls
    assert len(set(map(id, lookups))) == 2


def test_keras_callbacks_still_set_a_float_rate():
    """Keras' own plateau callback and scheduler go through the setter."""
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    controller = rate_controller(model)
    callbacks = [
        keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5),
    ]
    fit(model, callbacks, epochs=3)
    assert controller.current() == pytest.approx(0.1 * 0.5**3)
    assert installed_controller(model.optimizer) is controller


def test_a_float_rate_reads_as_keras_variable_under_the_controller():
    """Keras idioms on `optimizer.learning_rate` keep working: a float
    rate reads as Keras' own variable (`.value`, `.assign`), and a rate
    that a curve drives reads as a tensor, as a schedule's does in Keras."""
    if keras.backend.backend() == "jax":
        pytest.skip(
            "JAX: the controller cannot tell a read in the traced step "
            "from one outside it, and reads as a schedule (a jax array)"
        )
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    controller = rate_controller(model)
    rate = model.optimizer.learning_rate
    assert rate is controller.learning_rate
    assert float(ops.convert_to_numpy(rate.value)) == pytest.approx(0.1)
    model.optimizer.learning_rate.assign(0.25)
    recorder = helpers.BiasRecorder()
    fit(model, [recorder], epochs=1)
    np.testing.assert_allclose(
        recorder.values, -0.25 * np.arange(1, STEPS + 1), rtol=1e-6
    )
    controller.set_curve([0.5], first_step=0)
    curve_rate = model.optimizer.learning_rate
    assert not isinstance(curve_rate, keras.Variable)
    assert float(ops.convert_to_numpy(curve_rate)) == pytest.approx(0.5)
    controller.clear_curve()
    assert model.optimizer.learning_rate is controller.learning_rate


def _cut_and_curve(model):
    controller = rate_controller(model)
    controller.set_curve([0.2, 0.4, 0.6, 0.8], first_step=0)
    controller.multiply(0.5)
    recorder = helpers.BiasRecorder()
    fit(model, [recorder], epochs=1)
    rates = 0.5 * np.array([0.2, 0.4, 0.6, 0.8, 0.8, 0.8])
    # mean(y_pred) has gradient 1 on one device; under the two-replica
    # strategy Keras sums the replicas' gradients of it, 2.
    gradient = round(-recorder.values[0] / rates[0])
    assert gradient == model.distribute_strategy.num_replicas_in_sync
    np.testing.assert_allclose(
        recorder.values, -gradient * np.cumsum(rates), rtol=1e-6
    )


def _bias_model(jit_compile):
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")]
    )
    model.compile(
        keras.optimizers.SGD(0.1),
        loss=helpers.mean_prediction,
        jit_compile=jit_compile,
    )
    return model


@pytest.mark.tensorflow_only
def test_cut_and_curve_under_xla():
    _cut_and_curve(_bias_model(jit_compile=True))


@pytest.mark.tensorflow_only
def test_cut_and_curve_under_mirrored_strategy(two_cpu_strategy):
    with two_cpu_strategy.scope():
        model = _bias_model(jit_compile=False)
    _cut_and_curve(model)


def test_saved_mid_run_loads_in_a_fresh_process_at_the_same_rate(tmp_path):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    model = helpers.bias_model(keras.optimizers.Adam(schedule))
    fit(model, [], epochs=1)
    controller = rate_controller(model)
    controller.multiply(0.1)
    path = str(tmp_path / "mid.keras")
    model.save(path)
    expected = controller.current()
    script = (
        "import json, keras, keras_lr\n"
        "import numpy as np\n"
        "import tests.callbacks.helpers\n"
        "from keras import ops\n"
        f"m = keras.models.load_model({path!r})\n"
        "rate = float(ops.convert_to_numpy(m.optimizer.learning_rate))\n"
        "z = np.zeros((4, 1), \"float32\")\n"
        "m.fit(z, z, batch_size=4, verbose=0)\n"
        "after = float(ops.convert_to_numpy(m.optimizer.learning_rate))\n"
        "print(json.dumps([rate, after]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rate, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert rate == pytest.approx(expected, rel=1e-6)
    step = STEPS + 1
    assert after == pytest.approx(0.1 * 0.1 * 0.5 ** (step / 10), rel=1e-6)


def test_weights_carry_the_factor_both_ways(tmp_path):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    model = helpers.bias_model(keras.optimizers.SGD(schedule))
    fit(model, [], epochs=1)
    rate_controller(model).multiply(0.25)
    path = str(tmp_path / "w.weights.h5")
    model.save_weights(path)

    fresh = helpers.bias_model(keras.optimizers.SGD(schedule))
    fresh.optimizer.build(fresh.trainable_variables)
    controller = rate_controller(fresh)
    fresh.load_weights(path)
    assert controller.multiplier == pytest.approx(0.25, rel=1e-15)
    assert controller.current() == rate_controller(model).current()

    # A file written without a controller leaves the factor alone.
    plain = helpers.bias_model(keras.optimizers.SGD(schedule))
    fit(plain, [], epochs=1)
    plain_path = str(tmp_path / "plain.weights.h5")
    plain.save_weights(plain_path)
    fresh.load_weights(plain_path)
    assert controller.multiplier == pytest.approx(0.25, rel=1e-15)


def test_errors_name_the_argument():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="Argument `model` must be compiled"):
        rate_controller(model)


def test_momentum_curve_follows_the_step():
    model = helpers.bias_model(keras.optimizers.SGD(0.1, momentum=0.9))
    controller = rate_controller(model)
    assert controller.momentum_name(required=False) == "momentum"
    momenta = [0.9, 0.5, 0.0, 0.9, 0.5, 0.0]
    controller.set_momentum_curve("momentum", momenta, first_step=0)
    recorder = helpers.BiasRecorder()
    fit(model, [recorder], epochs=1)
    expected = helpers.sgd_trajectory([0.1] * STEPS, momenta)
    np.testing.assert_allclose(recorder.values, expected, rtol=1e-6)
    controller.clear_momentum_curve(keep_last=True)
    assert float(model.optimizer.momentum) == 0.0
    assert json.loads(json.dumps(model.optimizer.get_config()))[
        "momentum"
    ] == pytest.approx(0.0)
    if keras.backend.backend() != "tensorflow":
        return
    # Keras reads the momentum as a tensor in its update: still float32 0.
    as_tensor = tf.convert_to_tensor(model.optimizer.momentum)
    assert as_tensor.dtype == tf.float32
    assert float(as_tensor.numpy()) == 0.0
