"""LogRateInBatchLogs: rate, momentum and batch size in the batch logs,
as `keras.callbacks.TensorBoard(update_freq="batch")` writes them."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lr
from keras_lr.callbacks import LogRateInBatchLogs
from tests.callbacks import helpers

pytestmark = pytest.mark.portable

STEPS = 8
RTOL = 2e-5  # float32 rates against float64 references


def fit(model, callbacks, epochs, data=None):
    if data is None:
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
    return model.fit(
        data, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks
    )


def tb_scalars(log_dir, tag):
    """{step: value} of a scalar tag under `log_dir/train`."""
    out = {}
    for path in glob.glob(os.path.join(log_dir, "train", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    out[event.step] = float(tf.make_ndarray(value.tensor))
    return out


def tensorboard_callback(log_dir):
    """Keras' own TensorBoard, writing every batch."""
    return keras.callbacks.TensorBoard(
        log_dir, update_freq="batch", write_graph=False
    )


def series(log_dir, tag, count):
    """Values of `tag` at TensorBoard's batch steps 1..count, in order."""
    scalars = tb_scalars(log_dir, tag)
    assert sorted(scalars) == list(range(1, count + 1))
    return [scalars[s] for s in range(1, count + 1)]


class BatchLogs(keras.callbacks.Callback):
    """Copies of the batch logs, as a callback placed after sees them."""

    def on_train_begin(self, logs=None):
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append(dict(logs))


def exponential_decay(step, initial, decay_steps, rate):
    return initial * rate ** (step / decay_steps)


def triangular(step, low, high, step_size):
    """Rate and wave height of the triangular cycle (Smith, 2017)."""
    cycle = np.floor(1 + step / (2 * step_size))
    x = abs(step / step_size - 2 * cycle + 1)
    height = max(0.0, 1.0 - x)
    return low + (high - low) * height, height


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_schedule_and_momentum_in_tensorboard(steps_per_execution, tmp_path):
    log_dir = str(tmp_path)
    schedule = keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=3, decay_rate=0.5
    )
    model = helpers.bias_model(
        keras.optimizers.SGD(schedule, momentum=0.9), steps_per_execution
    )
    callbacks = [
        LogRateInBatchLogs(),
        tensorboard_callback(log_dir),
    ]
    history = fit(model, callbacks, epochs=2)
    # One batch hook per call of `steps_per_execution` steps; it logs the
    # rate of the call's last step (whose weights the metrics describe).
    calls = 2 * STEPS // steps_per_execution
    steps = [steps_per_execution * (k + 1) - 1 for k in range(calls)]
    rates = [exponential_decay(s, 0.1, 3, 0.5) for s in steps]
    np.testing.assert_allclose(
        series(log_dir, "batch_learning_rate", calls), rates, rtol=RTOL
    )
    np.testing.assert_allclose(
        series(log_dir, "batch_momentum", calls), [0.9] * calls, rtol=RTOL
    )
    assert tb_scalars(log_dir, "batch_batch_size") == {}
    # The batch logs are their own dict: the epoch logs stay as they were.
    assert "momentum" not in history.history


def test_after_tensorboard_nothing_is_written(tmp_path):
    """Keras passes one logs dict to the callbacks in list order."""
    log_dir = str(tmp_path)
    model = helpers.bias_model(keras.optimizers.SGD(0.1, momentum=0.9))
    after = BatchLogs()
    callbacks = [
        tensorboard_callback(log_dir),
        LogRateInBatchLogs(),
        after,
    ]
    fit(model, callbacks, epochs=1)
    assert tb_scalars(log_dir, "batch_learning_rate") == {}
    assert len(tb_scalars(log_dir, "batch_loss")) == STEPS
    # The callbacks after it do see the keys.
    assert [logs["learning_rate"] for logs in after.logs] == pytest.approx(
        [0.1] * STEPS
    )


def test_cyclic_rate_and_momentum_every_step(tmp_path):
    log_dir = str(tmp_path)
    model = helpers.bias_model(keras.optimizers.SGD(momentum=0.9))
    callbacks = [
        keras_lr.callbacks.CyclicLR(0.01, 0.1, step_size=3),
        LogRateInBatchLogs(),
        tensorboard_callback(log_dir),
    ]
    fit(model, callbacks, epochs=2)
    total = 2 * STEPS
    waves = [triangular(s, 0.01, 0.1, 3) for s in range(total)]
    rates = [rate for rate, _ in waves]
    momenta = [0.95 - (0.95 - 0.85) * height for _, height in waves]
    np.testing.assert_allclose(
        series(log_dir, "batch_learning_rate", total), rates, rtol=RTOL
    )
    np.testing.assert_allclose(
        series(log_dir, "batch_momentum", total), momenta, rtol=RTOL
    )
    # Spot checks of the reference: the low, the peak, the low again.
    assert rates[0] == pytest.approx(0.01)
    assert rates[3] == pytest.approx(0.1)
    assert rates[6] == pytest.approx(0.01)


def test_batch_size_changes_at_the_milestone(tmp_path):
    log_dir = str(tmp_path)
    x, y = helpers.zeros_data(STEPS)
    loader = keras_lr.data.GrowingBatchLoader(
        x, y, batch_size=helpers.BATCH, seed=0
    )
    model = helpers.bias_model(keras.optimizers.Adam(0.01))
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1], 2), None
    )
    callbacks = [
        grow,
        LogRateInBatchLogs(loader=loader),
        tensorboard_callback(log_dir),
    ]
    fit(model, callbacks, epochs=2, data=loader)
    # Epoch 0: 8 batches of 4 samples; epoch 1: 4 batches of 8.
    total = STEPS + STEPS // 2
    sizes = [4.0] * STEPS + [8.0] * (STEPS // 2)
    assert series(log_dir, "batch_batch_size", total) == sizes
    np.testing.assert_allclose(
        series(log_dir, "batch_learning_rate", total), [0.01] * total, rtol=RTOL
    )
    # Adam's momentum is named after its attribute.
    np.testing.assert_allclose(
        series(log_dir, "batch_beta_1", total), [0.9] * total, rtol=RTOL
    )
    assert tb_scalars(log_dir, "batch_momentum") == {}


def test_no_momentum_key_without_momentum_and_bad_loader():
    model = helpers.bias_model(keras.optimizers.SGD(0.05))
    after = BatchLogs()
    fit(model, [LogRateInBatchLogs(), after], epochs=1)
    assert len(after.logs) == STEPS
    for logs in after.logs:
        assert logs["learning_rate"] == pytest.approx(0.05)
        assert "momentum" not in logs and "beta_1" not in logs
        assert "batch_size" not in logs
    with pytest.raises(TypeError, match="GrowingBatchLoader"):
        LogRateInBatchLogs(loader=[1, 2])


@pytest.mark.parametrize("logger_first", [True, False])
def test_shares_the_recorder_with_learning_rate_logger(logger_first):
    """Both read one in-graph recorder, whatever their order: each sees
    every step's rate of a decaying schedule."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=3, decay_rate=0.5
    )
    model = helpers.bias_model(keras.optimizers.SGD(schedule))
    logger = keras_lr.callbacks.LearningRateLogger()
    pair = [logger, LogRateInBatchLogs()]
    after = BatchLogs()
    history = fit(model, [*(pair if logger_first else pair[::-1]), after], 2)
    rates = [exponential_decay(s, 0.1, 3, 0.5) for s in range(2 * STEPS)]
    np.testing.assert_allclose(
        [logs["learning_rate"] for logs in after.logs], rates, rtol=RTOL
    )
    np.testing.assert_allclose(
        history.history["learning_rate_per_step"], rates, rtol=RTOL
    )


def test_batch_hooks_evaluate_no_rate(monkeypatch):
    """The rate comes from the in-graph recorder: no batch evaluates the
    rate controller's formula eagerly (that cost 12% of a small MLP's CPU
    time per step, `benchmarks/callbacks_bench.py`)."""
    from keras_lr.control import RateController

    calls = []
    original = RateController.current

    def counting(self):
        calls.append(self)
        return original(self)

    model = helpers.bias_model(keras.optimizers.SGD(0.05, momentum=0.9))
    after = BatchLogs()
    monkeypatch.setattr(RateController, "current", counting)
    fit(model, [LogRateInBatchLogs(), after], epochs=2)
    assert calls == []
    assert [logs["learning_rate"] for logs in after.logs] == pytest.approx(
        [0.05] * 2 * STEPS
    )
    assert [logs["momentum"] for logs in after.logs] == pytest.approx(
        [0.9] * 2 * STEPS
    )
