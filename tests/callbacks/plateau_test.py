"""ReduceLROnPlateau and DivergenceGuard on tiny seeded models."""

import json
import math
import warnings

import keras
import numpy as np
import pytest
from keras import ops

import keras_lr
from tests.callbacks import helpers
from tests.callbacks.helpers import Script
from tests.schedules.reference import cosine

pytestmark = pytest.mark.portable

STEPS = 8  # steps per epoch



class RateLog(keras.callbacks.Callback):
    """The rate the next step will use, after every epoch (test only)."""

    def on_train_begin(self, logs=None):
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(
            float(ops.convert_to_numpy(self.model.optimizer.learning_rate))
        )


def keras_counting(
    values, patience, min_delta, threshold_mode, cooldown=0, mode="min"
):
    """Epochs (0-based) at which Keras-style counting cuts: plain Python."""
    best = math.inf if mode == "min" else -math.inf
    wait = cool = 0
    cuts = []
    sign = 1 if mode == "min" else -1
    for epoch, v in enumerate(values):
        if cool > 0:
            cool -= 1
            wait = 0
        if threshold_mode == "abs":
            bound = best - sign * min_delta
        else:
            bound = best * (1 - sign * min_delta)
        if (v < bound) if mode == "min" else (v > bound):
            best, wait = v, 0
        elif cool == 0:
            wait += 1
            if wait >= patience:
                cuts.append(epoch)
                wait, cool = 0, cooldown
    return cuts


def run(callbacks, epochs, optimizer=None, steps_per_execution=1):
    model = helpers.bias_model(
        optimizer or keras.optimizers.SGD(0.1), steps_per_execution
    )
    x, y = helpers.zeros_data(STEPS)
    history = model.fit(
        x,
        y,
        batch_size=helpers.BATCH,
        epochs=epochs,
        verbose=0,
        shuffle=False,
        callbacks=callbacks,
    )
    return model, history


SEQUENCE = [10.0, 9.0, 8.95, 8.92, 8.0, 7.95, 7.9, 7.0, 7.0, 7.0]


@pytest.mark.parametrize(
    "threshold_mode,expected_cuts", [("abs", [3, 6, 9]), ("rel", [6, 9])]
)
def test_cuts_at_scripted_epochs(threshold_mode, expected_cuts):
    # By hand, patience 2, min_delta 0.1:
    # abs: 9 < 10-0.1 improves; 8.95, 8.92 miss 8.9 -> cut after epoch 3;
    #      8.0 improves; 7.95, 7.9 miss 7.9 -> cut 6; 7.0 best; 7, 7 -> 9.
    # rel: 9 misses 10*0.9 (wait 1); 8.95 < 9 improves; 8.92 misses, 8.0
    #      < 8.055 improves; 7.95, 7.9 miss 7.2 -> cut 6; 7.0 best; -> 9.
    assert keras_counting(SEQUENCE, 2, 0.1, threshold_mode) == expected_cuts
    callback = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss",
        factor=0.5,
        patience=2,
        min_delta=0.1,
        threshold_mode=threshold_mode,
    )
    rates = RateLog()
    _, history = run(
        [Script("val_loss", SEQUENCE), callback, rates], len(SEQUENCE)
    )
    expected, lr = [], 0.1
    for epoch in range(len(SEQUENCE)):
        if epoch in expected_cuts:
            lr *= 0.5
        expected.append(lr)
    np.testing.assert_allclose(rates.values, expected, rtol=1e-6)
    # `learning_rate` in the logs is the rate used during the epoch.
    np.testing.assert_allclose(
        history.history["learning_rate"], [0.1] + expected[:-1], rtol=1e-6
    )


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("threshold_mode", ["abs", "rel"])
def test_cuts_match_reference_counting_random(mode, threshold_mode):
    rng = np.random.default_rng(3)
    values = list(1.0 + np.cumsum(rng.normal(0.0, 0.05, 24)))
    cuts = keras_counting(
        values, 2, 0.02, threshold_mode, cooldown=1, mode=mode
    )
    assert cuts  # the sequence does have plateaus
    callback = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss",
        factor=0.5,
        patience=2,
        min_delta=0.02,
        cooldown=1,
        mode=mode,
        threshold_mode=threshold_mode,
    )
    rates = RateLog()
    run([Script("val_loss", values), callback, rates], len(values))
    got = [
        e
        for e in range(len(values))
        if rates.values[e] < (rates.values[e - 1] if e else 0.1) * 0.99
    ]
    assert got == cuts


def test_smoothing_averages_before_comparing():
    # A steady downward trend with +-0.1 noise: the raw metric "plateaus"
    # every other epoch, its 2-epoch mean improves every epoch.
    values = [1.0, 0.8, 0.9, 0.7, 0.8, 0.6, 0.7, 0.5]
    assert keras_counting(values, 1, 1e-4, "abs") == [2, 4, 6]
    means = [values[0]] + [(a + b) / 2 for a, b in zip(values, values[1:])]
    assert keras_counting(means, 1, 1e-4, "abs") == []

    raw = keras_lr.callbacks.ReduceLROnPlateau("val_loss", 0.5, patience=1)
    rates = RateLog()
    run([Script("val_loss", values), raw, rates], len(values))
    np.testing.assert_allclose(
        rates.values,
        [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125],
        rtol=1e-6,
    )
    smooth = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss", 0.5, patience=1, smoothing=2
    )
    rates = RateLog()
    run([Script("val_loss", values), smooth, rates], len(values))
    np.testing.assert_allclose(rates.values, [0.1] * 8, rtol=1e-6)


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_cut_under_cosine_decay_with_warmup(steps_per_execution):
    """Warmup, then cosine, then a cut: factor * schedule(step)."""
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=40, warmup_target=0.2, warmup_steps=8
    )
    callback = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss", factor=0.5, patience=1
    )
    recorder = helpers.BiasRecorder()
    # Improves at epochs 0, 1; flat at 2 -> cut after epoch 2; flat at 3
    # -> second cut after epoch 3.
    model, _ = run(
        [Script("val_loss", [3.0, 2.0, 2.0, 2.0, 1.0]), callback, recorder],
        5,
        keras.optimizers.SGD(schedule),
        steps_per_execution,
    )
    scale = [1.0] * 24 + [0.5] * 8 + [0.25] * 8
    rates = [
        scale[s] * cosine(s, 0.0, 40, warmup_target=0.2, warmup=8)
        for s in range(40)
    ]
    # Plain SGD with gradient 1: the bias falls by the rate at each step.
    expected = -np.cumsum(rates)
    seen = expected[steps_per_execution - 1 :: steps_per_execution]
    np.testing.assert_allclose(recorder.values, seen, rtol=2e-5, atol=1e-7)
    # The factor lives in the optimizer's rate controller, not in the
    # callback's state.
    controller = keras_lr.control.installed_controller(model.optimizer)
    assert controller.multiplier == pytest.approx(0.25, rel=1e-12)
    assert "scale" not in callback.get_state()


def test_min_lr_float_and_schedule():
    callback = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss", factor=0.1, patience=1, min_lr=0.03
    )
    rates = RateLog()
    run([Script("val_loss", [1.0] * 4), callback, rates], 4)
    np.testing.assert_allclose(rates.values, [0.1, 0.03, 0.03, 0.03], rtol=1e-6)

    # Under a schedule the clamp holds at the moment of the cut.
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 16, 0.5)
    callback = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss", factor=0.1, patience=1, min_lr=0.03
    )
    rates = RateLog()
    run(
        [Script("val_loss", [1.0] * 3), callback, rates],
        3,
        keras.optimizers.SGD(schedule),
    )
    # Cut after epoch 1 (step 16, raw rate 0.05): 0.005 is clamped to 0.03,
    # a scale of 0.6. After epoch 2 the scaled rate 0.6 * 0.1 * 0.5**1.5
    # has decayed below min_lr: no further cut.
    np.testing.assert_allclose(
        rates.values,
        [0.1 * 0.5**0.5, 0.03, 0.6 * 0.1 * 0.5**1.5],
        rtol=1e-5,
    )


def test_backtrack_restores_best_epoch_bitwise():
    keras.utils.set_random_seed(1)
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(0.01), "mse")

    class Capture(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.weights, self.slots, self.after = {}, {}, {}

        def on_epoch_end(self, epoch, logs=None):
            self.weights[epoch] = [
                np.array(w) for w in self.model.get_weights()
            ]
            self.slots[epoch] = [
                np.array(ops.convert_to_numpy(v))
                for v in self.model.optimizer.variables[2:]
            ]

    class After(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            capture.after[epoch] = (
                [np.array(w) for w in self.model.get_weights()],
                [
                    np.array(ops.convert_to_numpy(v))
                    for v in self.model.optimizer.variables[2:]
                ],
                int(ops.convert_to_numpy(self.model.optimizer.iterations)),
            )

    capture = Capture()
    callback = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss", factor=0.5, patience=2, backtrack=True
    )
    # Best at epoch 1; epochs 2, 3 do not improve -> cut after epoch 3.
    script = Script("val_loss", [2.0, 1.0, 1.5, 1.2, 0.5])
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=5,
        verbose=0,
        shuffle=False,
        callbacks=[script, capture, callback, After()],
    )
    assert callback.best_epoch == 4
    weights, slots, iterations = capture.after[3]
    for got, want in zip(weights, capture.weights[1]):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(slots, capture.slots[1]):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(capture.weights[3][0], capture.weights[1][0])
    assert iterations == 4 * 4  # the clock is not rolled back
    # The cut applies on top of the restored state.
    assert float(ops.convert_to_numpy(model.optimizer.learning_rate)) == (
        pytest.approx(0.005)
    )


def test_divergence_guard_survives_injected_nan():
    class InjectNaN(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                kernel = self.model.layers[0].kernel
                kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    class Capture(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.weights = {}

        def on_epoch_end(self, epoch, logs=None):
            self.weights[epoch] = [
                np.array(w) for w in self.model.get_weights()
            ]

    before, after = Capture(), Capture()
    guard = keras_lr.callbacks.DivergenceGuard(factor=0.5, verbose=1)
    keras.utils.set_random_seed(2)
    x = np.random.default_rng(1).normal(size=(32, 1)).astype("float32")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05, momentum=0.5), "mse")
    history = model.fit(
        x,
        3 * x,
        batch_size=8,
        epochs=5,
        verbose=0,
        shuffle=False,
        callbacks=[InjectNaN(), before, guard, after],
    )
    losses = history.history["loss"]
    assert math.isnan(losses[2])
    assert all(math.isfinite(v) for v in losses[3:])
    assert losses[4] < losses[1]  # training went on and kept improving
    for got, want in zip(after.weights[2], before.weights[1]):
        np.testing.assert_array_equal(got, want)
    assert float(ops.convert_to_numpy(model.optimizer.learning_rate)) == (
        pytest.approx(0.025)
    )
    assert guard.get_state() == {
        "best": pytest.approx(min(losses[:2] + losses[3:])),
        "rollbacks": 1,
        "last_good_epoch": 4,
    }


def test_divergence_guard_jump_above_threshold():
    guard = keras_lr.callbacks.DivergenceGuard(
        "val_loss", factor=0.5, threshold=3.0
    )
    rates = RateLog()
    run([Script("val_loss", [1.0, 0.8, 2.5, 2.41, 0.7]), guard, rates], 5)
    # 2.5 > 3 * 0.8 diverges; 2.41 > 2.4 too; 0.7 is fine.
    np.testing.assert_allclose(
        rates.values, [0.1, 0.1, 0.05, 0.025, 0.025], rtol=1e-6
    )
    assert guard.rollbacks == 2


def test_missing_monitor_warns_once_naming_keys():
    callback = keras_lr.callbacks.ReduceLROnPlateau("val_loss", patience=1)
    with pytest.warns(UserWarning) as record:
        run([callback], 3)
    messages = [str(w.message) for w in record if "val_loss" in str(w.message)]
    assert len(messages) == 1
    assert "Available metrics are: learning_rate, loss" in messages[0]


def test_state_round_trip_and_reset_across_fits():
    values = [1.0, 1.0, 0.5, 0.6, 0.7]
    callback = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss", factor=0.5, patience=3, smoothing=2
    )
    run([Script("val_loss", values[:3]), callback], 3)
    state = json.loads(json.dumps(callback.get_state()))
    assert state["best"] == pytest.approx(0.75)
    assert state["history"] == [1.0, 0.5]
    # A fresh fit() resets.
    run([Script("val_loss", [5.0]), callback], 1)
    assert callback.best == 5.0 and callback.wait == 0
    # A new callback given the state continues the count: epochs with
    # means 0.55 (improves), 0.65, 0.7, 0.7 -> cut after the third miss.
    resumed = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss", factor=0.5, patience=3, smoothing=2
    )
    resumed.set_state(state)
    rates = RateLog()
    run([Script("val_loss", [0.6, 0.7, 0.7, 0.7]), resumed, rates], 4)
    np.testing.assert_allclose(rates.values, [0.1, 0.1, 0.1, 0.05], rtol=1e-6)


def test_schedule_factor_travels_with_the_optimizer(tmp_path):
    """A cut on a schedule is saved with the optimizer's weights: a fresh
    model that loads them trains on at the cut rate."""
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 1000, 0.5)
    callback = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss", factor=0.25, patience=1
    )
    model, _ = run(
        [Script("val_loss", [1.0, 1.0]), callback],
        2,
        keras.optimizers.SGD(schedule),
    )
    cut = keras_lr.control.installed_controller(model.optimizer).current()
    path = str(tmp_path / "cut.weights.h5")
    model.save_weights(path)

    fresh = helpers.bias_model(keras.optimizers.SGD(schedule))
    fresh.optimizer.build(fresh.trainable_variables)
    controller = keras_lr.control.rate_controller(fresh)
    fresh.load_weights(path)
    assert controller.multiplier == pytest.approx(0.25, rel=1e-12)
    assert controller.current() == cut
    step = int(ops.convert_to_numpy(fresh.optimizer.iterations))
    assert cut == pytest.approx(0.25 * 0.1 * 0.5 ** (step / 1000), rel=1e-6)


@pytest.mark.parametrize("factor", [0.1, 0.3, 0.7])
def test_twenty_cuts_equal_keras_to_the_bit(factor):
    """Each cut rounds once, as Keras' `ReduceLROnPlateau` does."""
    epochs = 21
    ours = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss", factor=factor, patience=1, min_delta=0.0
    )
    theirs = keras.callbacks.ReduceLROnPlateau(
        "val_loss", factor=factor, patience=1, min_delta=0.0
    )
    rates_ours, rates_theirs = RateLog(), RateLog()
    run([Script("val_loss", [1.0] * epochs), ours, rates_ours], epochs)
    run([Script("val_loss", [1.0] * epochs), theirs, rates_theirs], epochs)
    assert len(set(rates_ours.values)) == epochs
    assert rates_ours.values == rates_theirs.values


def pytorch_counting(values, patience, cooldown):
    """Epochs at which PyTorch's `ReduceLROnPlateau` (mode min, abs
    threshold 0) cuts: its `step()` order, in plain Python."""
    best, bad, cool, cuts = math.inf, 0, 0, []
    for epoch, v in enumerate(values):
        if v < best:
            best, bad = v, 0
        else:
            bad += 1
        if cool > 0:
            cool -= 1
            bad = 0
        if bad > patience:
            cuts.append(epoch)
            cool, bad = cooldown, 0
    return cuts


@pytest.mark.parametrize("patience", [1, 2, 3])
@pytest.mark.parametrize("cooldown", [1, 2, 4])
def test_patience_and_cooldown_are_pytorchs_plus_one(patience, cooldown):
    """What the callbacks guide says: Keras' (and our) `patience=p,
    cooldown=c` is PyTorch's `patience=p - 1, cooldown=c - 1`."""
    values = list(np.random.default_rng(patience * 10 + cooldown).random(40))
    callback = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss",
        factor=0.5,
        patience=patience,
        cooldown=cooldown,
        min_delta=0.0,
    )
    rates = RateLog()
    run([Script("val_loss", values), callback, rates], len(values))
    # RateLog holds the rate after each epoch: a cut at epoch e changes it.
    cut_epochs = [
        e
        for e, (a, b) in enumerate(
            zip([float(np.float32(0.1))] + rates.values, rates.values)
        )
        if b != a
    ]
    expected = pytorch_counting(values, patience - 1, cooldown - 1)
    assert expected  # the sequence does make it cut
    assert cut_epochs == expected


def test_mode_auto_follows_keras():
    """`val_auc` is maximized, the loss minimized, an unknown name is an
    error naming the argument (Keras 3's rule)."""
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    model.compile(
        keras.optimizers.SGD(0.1), "mse", metrics=[keras.metrics.AUC()]
    )
    x, y = helpers.zeros_data(STEPS)
    auc = keras_lr.callbacks.ReduceLROnPlateau("val_auc", patience=1)
    model.fit(
        x,
        (y > 0).astype("float32"),
        batch_size=helpers.BATCH,
        epochs=1,
        verbose=0,
        validation_data=(x, (y > 0).astype("float32")),
        callbacks=[auc],
    )
    assert auc.tracker.mode == "max"
    loss = keras_lr.callbacks.ReduceLROnPlateau("val_loss", patience=1)
    run([Script("val_loss", [1.0]), loss], 1)
    assert loss.tracker.mode == "min"
    unknown = keras_lr.callbacks.ReduceLROnPlateau("score", patience=1)
    with pytest.raises(ValueError, match="mode='auto'.*score"):
        run([Script("score", [1.0]), unknown], 1)


def test_verbose_message(capsys):
    callback = keras_lr.callbacks.ReduceLROnPlateau(
        "val_loss", factor=0.5, patience=1, verbose=1
    )
    run([Script("val_loss", [1.0, 1.0]), callback], 2)
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.05." in (
        capsys.readouterr().out
    )


def test_argument_errors():
    cls = keras_lr.callbacks.ReduceLROnPlateau
    with pytest.raises(ValueError, match="factor"):
        cls(factor=1.0)
    with pytest.raises(ValueError, match="factor"):
        cls(factor=0.0)
    with pytest.raises(ValueError, match="patience"):
        cls(patience=-1)
    with pytest.raises(ValueError, match="cooldown"):
        cls(cooldown=-1)
    with pytest.raises(ValueError, match="threshold_mode"):
        cls(threshold_mode="relative")
    with pytest.raises(ValueError, match="smoothing"):
        cls(smoothing=0)
    with pytest.raises(ValueError, match="threshold"):
        keras_lr.callbacks.DivergenceGuard(threshold=1.0)
    with pytest.raises(ValueError, match="factor"):
        keras_lr.callbacks.DivergenceGuard(factor=2.0)


def test_no_warning_when_monitor_present():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(
            [
                Script("val_loss", [1.0, 0.5]),
                keras_lr.callbacks.ReduceLROnPlateau("val_loss"),
            ],
            2,
        )


def test_divergence_guard_first_epoch_rolls_back_to_start():
    """The optimizer is not built before the first step: built early."""

    class InjectNaN(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 0:
                kernel = self.model.layers[0].kernel
                kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    class After(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.weights = [np.array(w) for w in self.model.get_weights()]
                # Adagrad's (on JAX, `optimizer.variables` also holds the
                # rate controller's, after them).
                self.slots = [
                    np.array(ops.convert_to_numpy(v))
                    for v in self.model.optimizer.variables[2:]
                    if "accumulator" in v.path
                ]

    keras.utils.set_random_seed(2)
    x = np.random.default_rng(1).normal(size=(32, 1)).astype("float32")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adagrad(0.05), "mse")
    start = [np.array(w) for w in model.get_weights()]
    after = After()
    guard = keras_lr.callbacks.DivergenceGuard()
    history = model.fit(
        x,
        3 * x,
        batch_size=8,
        epochs=3,
        verbose=0,
        callbacks=[InjectNaN(), guard, after],
    )
    for got, want in zip(after.weights, start):
        np.testing.assert_array_equal(got, want)
    # Adagrad's accumulators start at 0.1, not 0: restored exactly.
    assert len(after.slots) == 2
    for slot in after.slots:
        np.testing.assert_array_equal(slot, np.full(slot.shape, 0.1, "float32"))
    assert math.isnan(history.history["loss"][0])
    assert math.isfinite(history.history["loss"][2])
