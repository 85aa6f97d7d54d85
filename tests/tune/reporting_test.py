"""ReportAndCheckpoint hands its reports to Ray from a thread: in order,
while the next epoch trains, and with Ray's stop raised in `fit`.

Ray's `report` and trial context are replaced by recording fakes, so
these run without a Ray session.
"""

import json
import os
import threading

import keras
import numpy as np
import pytest
import ray.tune

import keras_lr
import keras_lr.tune

pytestmark = pytest.mark.portable


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 8)).astype("float32"), rng.integers(0, 3, 32)


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    return model


class _Reports(list):
    hook = None


class _Context:
    def get_trial_id(self):
        return "trial_00000"


@pytest.fixture
def reports(monkeypatch):
    """Every report as Ray would receive it: the metrics, the checkpoint's
    description and file names read at the time of the report, and
    whether `report` ran on the thread that trains."""
    received = _Reports()
    trainer = threading.current_thread()

    def report(metrics, checkpoint=None):
        entry = {"metrics": dict(metrics), "on_trainer": False}
        entry["on_trainer"] = threading.current_thread() is trainer
        if checkpoint is not None:
            folder = checkpoint.path
            entry["folder"] = folder
            entry["files"] = sorted(os.listdir(folder))
            with open(os.path.join(folder, "keras_lr_tune.json")) as file:
                entry["meta"] = json.load(file)
        received.append(entry)
        if received.hook is not None:
            received.hook(entry)

    monkeypatch.setattr(ray.tune, "report", report)
    monkeypatch.setattr(ray.tune, "get_context", _Context)
    return received


class _EpochLog(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.began = []

    def on_epoch_begin(self, epoch, logs=None):
        self.began.append(epoch)


def test_reports_arrive_in_order_with_each_epochs_checkpoint(reports):
    x, y = _data()
    model = _model()
    callback = keras_lr.tune.ReportAndCheckpoint(
        {"learning_rate": 0.1}, restore=False
    )
    model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[callback])
    # Every epoch's report reached Ray before `fit` returned, in order,
    # from the report thread.
    assert [r["metrics"]["epoch"] for r in reports] == [1, 2, 3, 4]
    assert [r["metrics"]["iterations"] for r in reports] == [4, 8, 12, 16]
    assert not any(r["on_trainer"] for r in reports)
    for epoch, entry in enumerate(reports, start=1):
        assert entry["meta"]["epoch"] == epoch
        assert entry["meta"]["iterations"] == 4 * epoch
        assert "state.json" in entry["files"]
        assert any(f.startswith("ckpt-") for f in entry["files"])
        # Removed once Ray has copied it.
        assert not os.path.exists(entry["folder"])


def test_the_next_epoch_trains_while_a_report_is_in_flight(reports):
    x, y = _data()
    model = _model()
    log = _EpochLog()
    second_epoch_began = threading.Event()
    seen = []

    def hold_first_report(entry):
        if entry["metrics"]["epoch"] == 1:
            # Synchronous reporting would never let epoch 2 begin.
            seen.append(second_epoch_began.wait(timeout=30))

    reports.hook = hold_first_report

    class Signal(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                second_epoch_began.set()

    callback = keras_lr.tune.ReportAndCheckpoint(
        {"learning_rate": 0.1}, restore=False
    )
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=3,
        verbose=0,
        callbacks=[log, Signal(), callback],
    )
    assert seen == [True]
    assert [r["metrics"]["epoch"] for r in reports] == [1, 2, 3]


def test_a_stop_from_ray_ends_fit_at_the_next_epoch_end(reports):
    x, y = _data()
    model = _model()
    log = _EpochLog()

    def stop_after_second(entry):
        if entry["metrics"]["epoch"] == 2:
            raise SystemExit(0)  # What Ray's report does to stop a trial.

    reports.hook = stop_after_second
    callback = keras_lr.tune.ReportAndCheckpoint(
        {"learning_rate": 0.1}, restore=False
    )
    with pytest.raises(SystemExit):
        model.fit(
            x, y, batch_size=8, epochs=6, verbose=0, callbacks=[log, callback]
        )
    # Epoch 3 trained while the report of epoch 2 was in flight; its end
    # raised Ray's stop before reporting it.
    assert log.began == [0, 1, 2]
    assert [r["metrics"]["epoch"] for r in reports] == [1, 2]
    assert int(model.optimizer.iterations.numpy()) == 12


def test_an_error_in_the_report_is_raised_in_fit(reports):
    x, y = _data()
    model = _model()

    def fail(entry):
        raise OSError("storage is full")

    reports.hook = fail
    callback = keras_lr.tune.ReportAndCheckpoint(
        {"learning_rate": 0.1}, restore=False
    )
    with pytest.raises(OSError, match="storage is full"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])


def test_a_second_fit_after_an_exception_starts_clean(reports):
    x, y = _data()
    model = _model()

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("stopped by the user")

    def fail_first(entry):
        if len(reports) == 1:
            raise OSError("storage is full")

    reports.hook = fail_first
    callback = keras_lr.tune.ReportAndCheckpoint(
        {"learning_rate": 0.1}, restore=False
    )
    with pytest.raises(KeyboardInterrupt):
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=3,
            verbose=0,
            callbacks=[Interrupt(), callback],
        )
    # The first fit's failed report is not raised in the second fit, which
    # resumes from the backup of epoch 1 (as after any crash).
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
    assert [r["metrics"]["epoch"] for r in reports] == [1, 2]
    assert reports[1]["meta"]["iterations"] == 8
