"""Batch-size callbacks: schedule, plateau growth, hybrid hand-over, state."""

import csv
import json
import math
import os

import keras
import numpy as np
import pytest

import keras_lr
from tests.data.recorder import epochs_of
from tests.data.recorder import id_data
from tests.data.recorder import recording_model
from tests.data.recorder import traces_allowed

pytestmark = pytest.mark.portable

N = 50
LR = 0.1


def make_loader(batch_size=4, num_samples=N, seed=0):
    x, y = id_data(num_samples)
    return keras_lr.data.GrowingBatchLoader(
        x, y, batch_size=batch_size, seed=seed
    )


def fit(model, loader, callbacks, epochs, path="loader", **kw):
    if path == "as_dataset":
        # Inside the model's strategy scope, as `as_dataset()` asks.
        with model.distribute_strategy.scope():
            data = loader.as_dataset()
        kw["steps_per_epoch"] = loader.steps_per_epoch
    else:
        data = loader
    return model.fit(
        data,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
        **kw,
    )


def cumulative_updates(sizes, num_samples=N):
    return list(np.cumsum([math.ceil(num_samples / b) for b in sizes]))


class Feed(keras.callbacks.Callback):
    """Puts a scripted value under `logs["score"]` (placed first)."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["score"] = self.values[epoch]


def keras_plateau_reference(values, patience, factor, batch, min_delta=0.0):
    """Batch size of each epoch under Keras' patience rule (mode min)."""
    best, wait, sizes = math.inf, 0, []
    for value in values:
        sizes.append(batch)
        if value < best - min_delta:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= patience:
                batch, wait = int(round(batch * factor)), 0
    return sizes


def test_scheduler_grows_at_milestones_and_logs_size_and_updates():
    loader = make_loader()
    model = recording_model(learning_rate=LR)
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1, 2, 3], 2), None
    )
    history = fit(model, loader, [grow], epochs=4)
    sizes = [4, 8, 16, 32]
    assert history.history["batch_size"] == sizes
    assert history.history["updates"] == cumulative_updates(sizes)
    np.testing.assert_allclose(history.history["learning_rate"], [LR] * 4)
    for size, epoch in zip(sizes, epochs_of(model.batches, N)):
        assert sorted(i for b in epoch for i in b) == list(range(N))
        assert max(len(b) for b in epoch) == size
    assert model.traces == traces_allowed(model, 1)


def test_one_argument_schedule():
    loader = make_loader()
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, lambda epoch: [5, 10, 25][epoch], max_batch_size=None
    )
    history = fit(recording_model(), loader, [grow], epochs=3)
    assert history.history["batch_size"] == [5, 10, 25]
    assert history.history["updates"] == cumulative_updates([5, 10, 25])


# `as_dataset()` builds a `tf.data` pipeline: TensorFlow only.
PATHS = [
    "loader",
    pytest.param("as_dataset", marks=pytest.mark.tensorflow_only),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_hybrid_hands_over_to_lr_decay_at_the_cap(path, steps_per_execution):
    loader = make_loader()
    model = recording_model(
        learning_rate=LR, steps_per_execution=steps_per_execution
    )
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1, 2, 3], 2), 10
    )
    history = fit(model, loader, [grow], epochs=4, path=path)
    # Targets 4, 8, 16, 32; the cap is 10; the rate takes 10/16, 10/32.
    assert history.history["batch_size"] == [4, 8, 10, 10]
    np.testing.assert_allclose(
        history.history["learning_rate"],
        [LR, LR, LR * 10 / 16, LR * 10 / 32],
        rtol=1e-6,
    )
    assert history.history["updates"] == cumulative_updates([4, 8, 10, 10])
    for size, epoch in zip([4, 8, 10, 10], epochs_of(model.batches, N)):
        assert sorted(i for b in epoch for i in b) == list(range(N))
        assert max(len(b) for b in epoch) == size
    assert model.traces <= traces_allowed(model, 2)


def test_hybrid_on_a_scheduled_rate_traces_at_most_twice():
    loader = make_loader()
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [10**6], [LR, LR / 10]
    )
    model = recording_model(learning_rate=schedule)
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1, 2, 3], 2), 8
    )
    history = fit(model, loader, [grow], epochs=4)
    assert history.history["batch_size"] == [4, 8, 8, 8]
    np.testing.assert_allclose(
        history.history["learning_rate"], [LR, LR, LR / 2, LR / 4], rtol=1e-6
    )
    assert model.traces <= traces_allowed(model, 2)


def test_auto_cap_is_a_tenth_of_the_dataset():
    loader = make_loader(num_samples=200)
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1, 2, 3], 2)
    )
    assert grow.cap == 20
    history = fit(recording_model(learning_rate=LR), loader, [grow], epochs=4)
    assert history.history["batch_size"] == [4, 8, 16, 20]
    assert history.history["learning_rate"][-1] == pytest.approx(LR * 20 / 32)


@pytest.mark.parametrize(
    "coupling, rule", [("linear", lambda r: r), ("sqrt", math.sqrt)]
)
def test_lr_coupling_rules(coupling, rule):
    loader = make_loader()
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader,
        keras_lr.callbacks.grow_batch_at([1, 2], 2),
        None,
        lr_coupling=coupling,
    )
    history = fit(recording_model(learning_rate=LR), loader, [grow], epochs=3)
    expected = [LR * rule(b / 4) for b in (4, 8, 16)]
    np.testing.assert_allclose(
        history.history["learning_rate"], expected, rtol=1e-6
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_plateau_grows_at_the_epoch_keras_patience_gives(
    path, steps_per_execution
):
    values = [1.0, 0.9, 0.95, 0.96, 0.97, 0.8, 0.85, 0.86, 0.87]
    loader = make_loader()
    grow = keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
        loader,
        monitor="score",
        mode="min",
        factor=2,
        patience=2,
        min_delta=0.0,
        max_batch_size=None,
    )
    model = recording_model(steps_per_execution=steps_per_execution)
    history = fit(model, loader, [Feed(values), grow], epochs=9, path=path)
    expected = keras_plateau_reference(values, patience=2, factor=2, batch=4)
    assert expected == [4, 4, 4, 4, 8, 8, 8, 8, 16]
    assert history.history["batch_size"] == expected
    # What the model saw, not only what was logged.
    for size, epoch in zip(expected, epochs_of(model.batches, N)):
        assert max(len(b) for b in epoch) == size
        assert sorted(i for b in epoch for i in b) == list(range(N))


def test_plateau_hybrid_hands_over_at_the_cap():
    loader = make_loader()
    model = recording_model(learning_rate=LR)
    grow = keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
        loader,
        monitor="score",
        mode="min",
        factor=2,
        patience=1,
        max_batch_size=8,
    )
    history = fit(model, loader, [Feed([1.0] * 5), grow], epochs=5)
    assert history.history["batch_size"] == [4, 4, 8, 8, 8]
    np.testing.assert_allclose(
        history.history["learning_rate"],
        [LR, LR, LR, LR / 2, LR / 4],
        rtol=1e-6,
    )


def test_two_fits_start_fresh():
    loader = make_loader()
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1, 2], 2), None
    )
    model = recording_model()
    fit(model, loader, [grow], epochs=3)
    history = fit(model, loader, [grow], epochs=3)
    assert history.history["batch_size"] == [4, 8, 16]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_mid_epoch_resume_serves_exactly_the_rest(path, steps_per_execution):
    class StopAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            # After 2 steps (one step per call) or 3 (one call of 3).
            if self._epoch == 2 and batch >= 1:
                self.model.stop_training = True

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

    schedule = keras_lr.callbacks.grow_batch_at([1, 2], 2)
    loader = make_loader(seed=4)
    grow = keras_lr.callbacks.BatchSizeScheduler(loader, schedule, None)
    first = recording_model(steps_per_execution=steps_per_execution)
    fit(first, loader, [grow, StopAt()], epochs=4, path=path)
    done_steps = 2 if steps_per_execution == 1 else 3
    state = grow.get_state()
    assert state["position"] == done_steps
    assert state["loader"]["batch_size"] == 16

    loader2 = make_loader(seed=99)
    grow2 = keras_lr.callbacks.BatchSizeScheduler(loader2, schedule, None)
    grow2.set_state(state)
    second = recording_model(steps_per_execution=steps_per_execution)
    history = fit(
        second, loader2, [grow2], epochs=4, initial_epoch=2, path=path
    )
    assert history.history["batch_size"] == [16, 16]
    done = [i for b in first.batches[-done_steps:] for i in b]
    rest_batches = second.batches[: math.ceil(N / 16) - done_steps]
    rest = [i for b in rest_batches for i in b]
    assert sorted(done + rest) == list(range(N))
    assert epochs_of(second.batches[len(rest_batches) :], N)


def test_callbacks_after_it_record_batch_size_and_updates(tmp_path):
    # TensorBoard and CSVLogger write every key of the epoch logs; CSVLogger
    # stands in here because the tensorboard package is not installed.
    loader = make_loader()
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1], 2), None
    )
    path = os.path.join(tmp_path, "log.csv")
    fit(recording_model(), loader, [grow, keras.callbacks.CSVLogger(path)], 2)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["batch_size"]) for r in rows] == [4, 8]
    assert [int(r["updates"]) for r in rows] == [13, 20]


def test_verbose_message(capsys):
    loader = make_loader()
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1], 2), None, verbose=1
    )
    fit(recording_model(), loader, [grow], epochs=2)
    out = capsys.readouterr().out
    assert "Epoch 2: BatchSizeScheduler setting the batch size to 8." in out


def test_bad_arguments():
    loader = make_loader()
    with pytest.raises(ValueError, match=r"`factor` must be > 1.*factor=1"):
        keras_lr.callbacks.grow_batch_at([1], 1)
    with pytest.raises(ValueError, match=r"`factor` must be > 1.*0.5"):
        keras_lr.callbacks.IncreaseBatchSizeOnPlateau(loader, factor=0.5)
    with pytest.raises(ValueError, match="`max_batch_size` must be > 0"):
        keras_lr.callbacks.BatchSizeScheduler(loader, len, max_batch_size=0)
    with pytest.raises(ValueError, match="`max_batch_size` must be >="):
        keras_lr.callbacks.BatchSizeScheduler(loader, len, max_batch_size=2)
    with pytest.raises(TypeError, match="`schedule` must be callable"):
        keras_lr.callbacks.BatchSizeScheduler(loader, 5)
    with pytest.raises(TypeError, match="`loader` must be"):
        keras_lr.callbacks.BatchSizeScheduler(np.zeros(3), len)
    with pytest.raises(ValueError, match="`lr_coupling` must be one of"):
        keras_lr.callbacks.BatchSizeScheduler(loader, len, lr_coupling="x")


def test_max_batch_size_above_the_dataset_warns_and_is_capped():
    loader = make_loader()
    with pytest.warns(UserWarning, match="larger than the dataset"):
        grow = keras_lr.callbacks.BatchSizeScheduler(
            loader, keras_lr.callbacks.grow_batch_at([1], 100), 500
        )
    assert grow.cap == N
    history = fit(recording_model(learning_rate=LR), loader, [grow], epochs=2)
    assert history.history["batch_size"] == [4, N]
    assert history.history["learning_rate"][1] == pytest.approx(LR * N / 400)


def test_schedule_returning_zero_is_an_error():
    loader = make_loader()
    grow = keras_lr.callbacks.BatchSizeScheduler(loader, lambda e: 0)
    with pytest.raises(ValueError, match="must return an int > 0"):
        fit(recording_model(), loader, [grow], epochs=1)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("path", PATHS)
def test_hybrid_under_mirrored_strategy(path, two_cpu_strategy):
    loader = make_loader()
    with two_cpu_strategy.scope():
        model = recording_model(learning_rate=LR)
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1, 2], 2), 10
    )
    history = fit(model, loader, [grow], epochs=3, path=path)
    assert history.history["batch_size"] == [4, 8, 10]
    assert history.history["updates"] == cumulative_updates([4, 8, 10])
    np.testing.assert_allclose(
        history.history["learning_rate"], [LR, LR, LR * 10 / 16], rtol=1e-6
    )
    for epoch in epochs_of(model.batches, N):
        assert sorted(i for b in epoch for i in b) == list(range(N))


def test_plateau_state_is_json_and_resumes_the_counters():
    loader = make_loader()
    grow = keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
        loader,
        monitor="score",
        mode="min",
        factor=2,
        patience=2,
        max_batch_size=None,
    )
    fit(recording_model(), loader, [Feed([1.0, 2.0, 3.0]), grow], epochs=2)
    state = json.loads(json.dumps(grow.get_state()))
    assert state["tracker"]["wait"] == 1
    assert state["tracker"]["best"] == 1.0
    again = keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
        make_loader(),
        monitor="score",
        mode="min",
        factor=2,
        patience=2,
        max_batch_size=None,
    )
    again.set_state(state)
    # One more bad epoch reaches patience 2: the batch grows after epoch 2.
    history = fit(
        recording_model(),
        again.loader,
        [Feed([1.0, 2.0, 3.0, 4.0]), again],
        epochs=4,
        initial_epoch=2,
    )
    assert history.history["batch_size"] == [4, 8]


@pytest.mark.parametrize("stop_at", [(1, None), (1, 5)])
def test_restored_state_reads_back_unchanged_until_the_epoch_opens(stop_at):
    """Between `set_state` and the next epoch (a resumed `fit`'s
    `on_train_begin`, where `keras_lr.tune` reports what a trial starts
    from), `get_state` is the restored state, not one computed from the
    new model's step count."""

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if stop_at == (self.epoch, batch + 1):
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if stop_at == (epoch, None):
                self.model.stop_training = True

    loader = make_loader()
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, lambda epoch: 8 if epoch >= 1 else 4, max_batch_size=None
    )
    model = recording_model()
    fit(model, loader, [grow, Stop()], epochs=3)
    state = json.loads(json.dumps(grow.get_state()))
    expected_position = 0 if stop_at[1] is None else stop_at[1]
    assert state["position"] == expected_position
    again = keras_lr.callbacks.BatchSizeScheduler(
        make_loader(),
        lambda epoch: 8 if epoch >= 1 else 4,
        max_batch_size=None,
    )
    again.set_state(state)
    again.set_model(model)
    assert again.get_state() == state
    fresh = recording_model()  # Step 0: the state must not move.
    again.set_model(fresh)
    assert again.get_state() == state


def test_plateau_hybrid_decay_stops_at_min_lr():
    loader = make_loader()
    model = recording_model(learning_rate=LR)
    grow = keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
        loader,
        monitor="score",
        mode="min",
        factor=2,
        patience=1,
        max_batch_size=8,
        min_lr=0.03,
    )
    history = fit(model, loader, [Feed([1.0] * 6), grow], epochs=6)
    assert grow.min_lr == 0.03
    assert history.history["batch_size"] == [4, 4, 8, 8, 8, 8]
    # Targets 4, 8, 16, 32, 64 -> decays 1/2, 1/4, 1/8 above the cap of 8,
    # each floored at min_lr as Keras' ReduceLROnPlateau does.
    expected = [LR, LR, LR]
    for decay in (1 / 2, 1 / 4, 1 / 8):
        expected.append(max(LR * decay, 0.03))
    assert expected[-2:] == [0.03, 0.03]
    np.testing.assert_allclose(
        history.history["learning_rate"], expected, rtol=1e-6
    )


def test_min_lr_leaves_a_rate_already_below_it_alone():
    loader = make_loader()
    model = recording_model(learning_rate=0.01)
    grow = keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
        loader,
        monitor="score",
        mode="min",
        factor=2,
        patience=1,
        max_batch_size=4,
        min_lr=0.05,
    )
    history = fit(model, loader, [Feed([1.0] * 4), grow], epochs=4)
    assert history.history["batch_size"] == [4, 4, 4, 4]
    np.testing.assert_allclose(
        history.history["learning_rate"], [0.01] * 4, rtol=1e-6
    )


def test_min_lr_must_be_non_negative():
    with pytest.raises(ValueError, match=r"`min_lr` must be >= 0.*-0.1"):
        keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
            make_loader(), min_lr=-0.1
        )


def test_min_lr_default_keeps_the_full_decay():
    loader = make_loader()
    grow = keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
        loader,
        monitor="score",
        mode="min",
        factor=2,
        patience=1,
        max_batch_size=4,
    )
    assert grow.min_lr == 0.0
    history = fit(
        recording_model(learning_rate=LR),
        loader,
        [Feed([1.0] * 4), grow],
        epochs=4,
    )
    np.testing.assert_allclose(
        history.history["learning_rate"],
        [LR, LR, LR / 2, LR / 4],
        rtol=1e-6,
    )


def decay_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    schedule = keras.optimizers.schedules.ExponentialDecay(
        LR, decay_steps=10, decay_rate=0.5
    )
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    return model


def test_hybrid_decay_on_a_keras_schedule_travels_with_save_weights(
    tmp_path,
):
    loader = make_loader(batch_size=8)
    model = decay_model()
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1, 2, 3], 2), 32
    )
    history = fit(model, loader, [grow], epochs=4)
    # Targets 8, 16, 32, 64; the cap is 32: the last growth is a decay
    # of the schedule by 32 / 64.
    sizes = [8, 16, 32, 32]
    assert history.history["batch_size"] == sizes
    steps = cumulative_updates(sizes)
    expected = [LR * 0.5 ** (s / 10) for s in steps]
    expected[-1] *= 0.5
    np.testing.assert_allclose(
        history.history["learning_rate"], expected, rtol=1e-6
    )
    controller = keras_lr.control.rate_controller(model)
    assert controller.multiplier == pytest.approx(0.5, rel=1e-6)
    path = os.path.join(tmp_path, "run.weights.h5")
    model.save_weights(path)

    fresh = decay_model(seed=1)
    restored = keras_lr.control.rate_controller(fresh)
    assert restored.current() == pytest.approx(LR, rel=1e-6)
    fresh.load_weights(path)
    assert restored.step() == controller.step() == steps[-1]
    assert restored.multiplier == controller.multiplier
    assert restored.current() == controller.current()


@pytest.mark.parametrize("path", PATHS)
def test_resumed_hybrid_does_not_apply_the_decay_again(path):
    schedule = keras_lr.callbacks.grow_batch_at([1, 2, 3], 2)
    loader = make_loader()
    model = recording_model(learning_rate=LR)
    grow = keras_lr.callbacks.BatchSizeScheduler(loader, schedule, 10)
    fit(model, loader, [grow], epochs=3, path=path)
    state = json.loads(json.dumps(grow.get_state()))
    assert set(state) == {
        "target_batch_size",
        "last_scheduled_epoch",
        "position",
        "loader",
    }
    assert state["target_batch_size"] == 16
    assert state["loader"]["epoch"] == 3
    assert state["position"] == 0
    # The same model (its optimizer holds the rate LR * 10 / 16) goes on
    # with a new callback and loader: only the growth to 32 is new.
    again = keras_lr.callbacks.BatchSizeScheduler(make_loader(), schedule, 10)
    again.set_state(state)
    history = fit(
        model, again.loader, [again], epochs=5, initial_epoch=3, path=path
    )
    assert history.history["batch_size"] == [10, 10]
    np.testing.assert_allclose(
        history.history["learning_rate"],
        [LR * 10 / 32, LR * 10 / 32],
        rtol=1e-6,
    )


def test_plateau_auto_mode_follows_keras_at_the_first_epoch_end():
    loader = make_loader()
    grow = keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
        loader, monitor="score", factor=2, patience=1, max_batch_size=None
    )
    # Undecided until the first epoch end, as in Keras.
    assert grow.tracker.mode is None
    with pytest.raises(ValueError, match=r"monitor='score'.*mode='max'"):
        fit(recording_model(), loader, [Feed([1.0, 1.0]), grow], epochs=2)
    model = recording_model(metrics=["accuracy"])
    x, y = id_data(N)
    grow = keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
        loader, monitor="val_accuracy", factor=2, patience=1
    )
    fit(model, loader, [grow], epochs=1, validation_data=(x, y))
    assert grow.tracker.mode == "max"
    assert grow.get_state()["tracker"]["mode"] == "max"
