"""LearningRateLogger: the rate used at every step, in History and TB."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import keras_lr
from tests.callbacks import helpers
from tests.callbacks.cyclic_test import torch_cyclic_momentum
from tests.callbacks.cyclic_test import torch_one_cycle_momentum
from tests.schedules.reference import cosine
from tests.schedules.reference import torch_cyclic
from tests.schedules.reference import torch_one_cycle

pytestmark = pytest.mark.portable

STEPS = 8
RTOL = 2e-5  # float32 rates against float64 references
# Several steps per execution where the backend has them (PyTorch runs
# one step per execution).
SPE = 1 if keras.backend.backend() == "torch" else 4


def fit(model, callbacks, epochs):
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


def tb_scalars(log_dir, tag):
    """{step: value} of a scalar tag, read from the event files."""
    out = {}
    for path in glob.glob(os.path.join(log_dir, "train", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    out[event.step] = float(tf.make_ndarray(value.tensor))
    return out


@pytest.mark.parametrize("steps_per_execution", [1, 4])
@pytest.mark.parametrize("logger_first", [True, False])
def test_one_cycle_rate_and_beta_1_every_step(
    steps_per_execution, logger_first, tmp_path
):
    model = helpers.bias_model(keras.optimizers.Adam(), steps_per_execution)
    logger = keras_lr.callbacks.LearningRateLogger(log_dir=str(tmp_path))
    cycle = keras_lr.callbacks.OneCycleLR(0.1, pct_start=0.25)
    callbacks = [logger, cycle] if logger_first else [cycle, logger]
    history = fit(model, callbacks, epochs=3)
    total = 3 * STEPS
    rates = [torch_one_cycle(s, 0.1, total, 0.25) for s in range(total)]
    betas = [
        torch_one_cycle_momentum(s, total, 0.85, 0.95, 0.25, False)
        for s in range(total)
    ]
    np.testing.assert_allclose(
        history.history["learning_rate_per_step"], rates, rtol=RTOL
    )
    np.testing.assert_allclose(
        history.history["beta_1_per_step"], betas, rtol=RTOL
    )
    scalars = tb_scalars(str(tmp_path), "learning_rate")
    assert sorted(scalars) == list(range(total))
    np.testing.assert_allclose(
        [scalars[s] for s in range(total)], rates, rtol=RTOL
    )
    beta_scalars = tb_scalars(str(tmp_path), "beta_1")
    np.testing.assert_allclose(
        [beta_scalars[s] for s in range(total)], betas, rtol=RTOL
    )
    epoch_scalars = tb_scalars(str(tmp_path), "epoch_learning_rate")
    np.testing.assert_allclose(
        [epoch_scalars[e] for e in range(3)],
        [rates[STEPS * (e + 1) - 1] for e in range(3)],
        rtol=RTOL,
    )
    # The optimizer follows its own rate again: no curve is left on.
    controller = keras_lr.control.installed_controller(model.optimizer)
    assert not controller.curve_active


def test_plateau_cut_under_cosine_seen_per_step():
    schedule = keras.optimizers.schedules.CosineDecay(0.2, decay_steps=32)

    class Script(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = [2.0, 1.0, 1.0, 1.0][epoch]

    logger = keras_lr.callbacks.LearningRateLogger()
    plateau = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss", factor=0.5, patience=1
    )
    model = helpers.bias_model(keras.optimizers.SGD(schedule), SPE)
    history = fit(model, [logger, Script(), plateau], epochs=4)
    scale = [1.0] * 24 + [0.5] * 8  # cut after epoch 2 (step 24)
    expected = [scale[s] * cosine(s, 0.2, 32) for s in range(32)]
    got = history.history["learning_rate_per_step"]
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=1e-9)


def test_keras_callbacks_still_set_a_float_rate():
    """Keras' LearningRateScheduler assigns through the logger."""
    logger = keras_lr.callbacks.LearningRateLogger()
    scheduler = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: 0.1 / (epoch + 1)
    )
    model = helpers.bias_model(keras.optimizers.SGD(0.1), SPE)
    history = fit(model, [logger, scheduler], epochs=3)
    expected = [0.1 / (s // STEPS + 1) for s in range(3 * STEPS)]
    np.testing.assert_allclose(
        history.history["learning_rate_per_step"], expected, rtol=RTOL
    )
    # The bias moved by exactly these rates (gradient 1, plain SGD).
    assert helpers.bias(model) == pytest.approx(-sum(expected), rel=1e-5)
    assert "momentum_per_step" not in history.history


def test_second_fit_and_save_midway(tmp_path):
    path = str(tmp_path / "mid.keras")

    class Save(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.save(path)

    logger = keras_lr.callbacks.LearningRateLogger()
    model = helpers.bias_model(keras.optimizers.SGD(0.05, momentum=0.9))
    fit(model, [logger, Save()], epochs=1)
    loaded = keras.saving.load_model(path)
    assert float(ops.convert_to_numpy(loaded.optimizer.learning_rate)) == (
        pytest.approx(0.05)
    )
    history = fit(model, [logger], epochs=2)
    np.testing.assert_allclose(
        history.history["learning_rate_per_step"],
        [0.05] * 2 * STEPS,
        rtol=RTOL,
    )
    config = model.optimizer.get_config()["learning_rate"]
    assert config["class_name"] == "RateController"
    assert config["config"]["learning_rate"] == pytest.approx(0.05)
    # It loads without keras_lr's callbacks: as the plain float.
    rebuilt = keras.optimizers.SGD.from_config(model.optimizer.get_config())
    assert float(ops.convert_to_numpy(rebuilt.learning_rate)) == (
        pytest.approx(0.05)
    )


def test_capacity_warning_and_argument_errors():
    logger = keras_lr.callbacks.LearningRateLogger(capacity=5)
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    with pytest.warns(UserWarning, match="recorded 5 of the 8 steps"):
        history = fit(model, [logger], epochs=2)
    assert len(history.history["learning_rate_per_step"]) == 10
    with pytest.raises(ValueError, match="capacity"):
        keras_lr.callbacks.LearningRateLogger(capacity=0)
    with pytest.raises(TypeError, match="log_dir"):
        keras_lr.callbacks.LearningRateLogger(log_dir=3)


def test_save_midway_with_one_cycle_and_logger_loads(tmp_path):
    path = str(tmp_path / "mid.keras")

    class Save(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.model.save(path)

    model = helpers.bias_model(keras.optimizers.Adam(0.5))
    callbacks = [
        keras_lr.callbacks.LearningRateLogger(),
        keras_lr.callbacks.OneCycleLR(0.1, pct_start=0.25),
        Save(),
    ]
    fit(model, callbacks, epochs=2)
    loaded = keras.saving.load_model(path)
    # The curve belongs to the callback: the saved model holds the user's
    # own rate, and trains on at it.
    assert float(ops.convert_to_numpy(loaded.optimizer.learning_rate)) == (
        pytest.approx(0.5)
    )
    assert int(ops.convert_to_numpy(loaded.optimizer.iterations)) == STEPS
    assert type(loaded.optimizer.beta_1) is float


@pytest.mark.parametrize("cycle", ["one_cycle", "cyclic"])
def test_cycles_and_logger_under_mirrored_strategy(cycle, two_cpu_strategy):
    # The bias's gradient under the strategy, measured by one plain SGD
    # step: each replica's loss is the mean over its half of the batch,
    # and SGD with momentum is linear in it.
    with two_cpu_strategy.scope():
        probe = helpers.bias_model(keras.optimizers.SGD(1.0))
        model = helpers.bias_model(keras.optimizers.SGD(momentum=0.9))
    x, y = helpers.zeros_data(1)
    probe.fit(x, y, batch_size=helpers.BATCH, verbose=0, shuffle=False)
    gradient = -helpers.bias(probe)
    assert gradient in (1.0, 2.0)
    logger = keras_lr.callbacks.LearningRateLogger()
    if cycle == "one_cycle":
        callback = keras_lr.callbacks.OneCycleLR(
            0.1, pct_start=0.25, base_momentum=0.85, max_momentum=0.95
        )
        total = 2 * STEPS
        rates = [torch_one_cycle(s, 0.1, total, 0.25) for s in range(total)]
        momenta = [
            torch_one_cycle_momentum(s, total, 0.85, 0.95, 0.25, False)
            for s in range(total)
        ]
    else:
        callback = keras_lr.callbacks.CyclicLR(0.01, 0.1, step_size=3)
        steps = range(2 * STEPS)
        rates = [torch_cyclic(s, 0.01, 0.1, 3) for s in steps]
        momenta = [torch_cyclic_momentum(s, 0.85, 0.95, 3) for s in steps]
    recorder = helpers.BiasRecorder()
    history = fit(model, [callback, logger, recorder], epochs=2)
    np.testing.assert_allclose(
        history.history["learning_rate_per_step"], rates, rtol=RTOL
    )
    np.testing.assert_allclose(
        recorder.values,
        gradient * np.array(helpers.sgd_trajectory(rates, momenta)),
        rtol=RTOL,
        atol=1e-7,
    )
    np.testing.assert_allclose(
        history.history["momentum_per_step"], momenta, rtol=RTOL
    )
