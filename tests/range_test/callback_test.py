"""LRRangeTest and find_learning_rate on tiny seeded models.

References are independent: a NumPy re-run of SGD on a linear model for the
per-step losses, and plain loops for the divergence rule.
"""

import gc
import json
import math
import warnings
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lr
from keras_lr._model_state import record
from keras_lr.control import installed_controller
from keras_lr.control import rate_controller
from keras_lr.range_test import traced as traced_test

pytestmark = pytest.mark.portable

N, FEATURES, BATCH = 64, 4, 16
_rng = np.random.default_rng(0)
X = _rng.normal(size=(N, FEATURES)).astype("float32")
TRUE_W = np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")
Y = (X @ TRUE_W + 0.1 * _rng.normal(size=(N, 1))).astype("float32")


def quietly(fn, *args, **kwargs):
    """Runs `fn`, returning (value, list of warning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn(*args, **kwargs)
    return value, [str(w.message) for w in caught]


def linear_model(optimizer, steps_per_execution=1, jit_compile=False):
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
    model.set_weights(
        [np.full((FEATURES, 1), 0.1, "float32"), np.zeros(1, "float32")]
    )
    model.compile(
        optimizer,
        "mse",
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model


def mlp(learning_rate=1e-3, steps_per_execution=1, warm=True):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(1),
        ]
    )
    model.compile(
        keras.optimizers.Adam(learning_rate),
        "mse",
        steps_per_execution=steps_per_execution,
    )
    if warm:  # non-zero slots, iterations > 0, a traced train function
        model.fit(X[:32], Y[:32], batch_size=BATCH, epochs=1, verbose=0)
    return model


def prepare(model, steps=128):
    """Installs the rate controller with a curve table of `steps`.

    That is what a first range test leaves behind (the first test rebuilds
    the model's train function once, so that it reads the table; see
    `test_the_first_test_rebuilds_the_train_function_once`). From then on a
    test must put back the very train function it found.
    """
    controller = rate_controller(model)
    controller.set_curve(np.ones(steps, "float32"), controller.step())
    controller.clear_curve()
    return controller


def snapshot(model):
    controller = prepare(model)
    return {
        "model": [v.numpy().copy() for v in model.variables],
        "optimizer": [v.numpy().copy() for v in model.optimizer.variables],
        "controller": controller,
        "lr": controller.learning_rate,
        "current_lr": controller.current(),
        "train_function": model.train_function,
        "stop_training": model.stop_training,
    }


def assert_restored(model, before):
    after = snapshot(model)
    assert len(after["model"]) == len(before["model"])
    for a, b in zip(after["model"], before["model"]):
        np.testing.assert_array_equal(a, b)
    assert len(after["optimizer"]) == len(before["optimizer"])
    for a, b in zip(after["optimizer"], before["optimizer"]):
        np.testing.assert_array_equal(a, b)
    assert installed_controller(model.optimizer) is before["controller"]
    assert after["controller"] is before["controller"]
    assert after["lr"] is before["lr"]
    assert not after["controller"].curve_active
    assert after["current_lr"] == before["current_lr"]
    assert after["train_function"] is before["train_function"]
    assert after["stop_training"] == before["stop_training"]
    assert "compute_loss" not in vars(model)


def reference_sgd_losses(w, b, x, y, lrs, batch):
    """Losses of plain SGD on MSE, batches in order, wrapping around."""
    w, b = w.astype(np.float64), b.astype(np.float64)
    steps_per_epoch = len(x) // batch
    losses = []
    for k, lr in enumerate(lrs):
        lo = (k % steps_per_epoch) * batch
        xb, yb = x[lo : lo + batch].astype(np.float64), y[lo : lo + batch]
        err = xb @ w + b - yb
        losses.append(float(np.mean(err**2)))
        grad_w = 2.0 * xb.T @ err / batch
        grad_b = 2.0 * np.mean(err, axis=0)
        lr = float(np.float32(lr))  # the optimizer applies float32 rates
        w, b = w - lr * grad_w, b - lr * grad_b
    return np.array(losses)


def reference_sweep(start, end, n, mode="exponential"):
    if mode == "linear":
        return np.array([start + (end - start) * i / (n - 1) for i in range(n)])
    return np.array([start * (end / start) ** (i / (n - 1)) for i in range(n)])


class RaiseAt(keras.callbacks.Callback):
    def __init__(self, error, step):
        super().__init__()
        self.error, self.step = error, step

    def on_train_batch_end(self, batch, logs=None):
        if batch >= self.step:
            raise self.error


class IterationsAtEnd(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        self.iterations = int(self.model.optimizer.iterations.numpy())


# The loss of each step -----------------------------------------------------


@pytest.mark.parametrize(
    "steps_per_execution,jit_compile,mode",
    [
        (1, False, "exponential"),
        (4, False, "exponential"),
        (4, True, "exponential"),
        (1, False, "linear"),
    ],
)
def test_recorded_loss_is_the_loss_of_each_step(
    steps_per_execution, jit_compile, mode
):
    model = linear_model(
        keras.optimizers.SGD(0.01), steps_per_execution, jit_compile
    )
    w0, b0 = (v.copy() for v in model.get_weights())
    # The sweep counts from the optimizer's step at the start, not from 0.
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(7)
    finder = keras_lr.callbacks.LRRangeTest(
        start_lr=1e-3, end_lr=0.3, num_steps=20, mode=mode
    )
    # 4 steps per epoch: the sweep crosses four epoch ends.
    _, messages = quietly(
        model.fit,
        X,
        Y,
        batch_size=BATCH,
        epochs=6,
        shuffle=False,
        verbose=0,
        callbacks=[finder],
    )
    result = finder.result
    lrs = reference_sweep(1e-3, 0.3, 20, mode)
    np.testing.assert_allclose(result.learning_rates, lrs, rtol=1e-12)
    expected = reference_sgd_losses(w0, b0, X, Y, lrs, BATCH)
    np.testing.assert_allclose(result.losses, expected, rtol=2e-5)
    # Keras' logged loss is a running mean since the epoch start: not this.
    assert result.stop_reason == "finished"
    assert any("never diverged" in m for m in messages)
    np.testing.assert_array_equal(model.get_weights()[0], w0)


def test_steps_per_execution_gives_identical_curves():
    curves = []
    for spe in (1, 4):
        model = mlp(steps_per_execution=spe)
        result, _ = quietly(
            keras_lr.find_learning_rate,
            model,
            X,
            Y,
            batch_size=BATCH,
            start_lr=1e-4,
            end_lr=1e3,
            num_steps=60,
            seed=3,
        )
        curves.append(result)
    assert curves[0].stop_reason == "diverged"
    np.testing.assert_array_equal(
        curves[0].learning_rates, curves[1].learning_rates
    )
    np.testing.assert_array_equal(curves[0].losses, curves[1].losses)


def test_mirrored_strategy_records_the_global_batch_loss():
    # Not the `two_cpu_strategy` fixture: its collective all-reduce keys are
    # shared across strategies in one process, so a fit there with other
    # variable shapes aborts later mirrored tests ("Shape mismatch in the
    # collective instance"). Reducing to one device uses no collectives.
    two_cpu_strategy = tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"],
        cross_device_ops=tf.distribute.ReductionToOneDevice(),
    )
    results = []
    for strategy in (two_cpu_strategy, tf.distribute.get_strategy()):
        with strategy.scope():
            model = linear_model(keras.optimizers.SGD(0.01))
        result, _ = quietly(
            keras_lr.find_learning_rate,
            model,
            X,
            Y,
            batch_size=BATCH,
            start_lr=1e-3,
            end_lr=0.3,
            num_steps=20,
            seed=0,
        )
        results.append((model, result))
    (mirrored, distributed), (_, single) = results
    np.testing.assert_allclose(distributed.losses, single.losses, rtol=2e-5)
    np.testing.assert_array_equal(
        mirrored.get_weights()[0], np.full((FEATURES, 1), 0.1, "float32")
    )


# Stopping ------------------------------------------------------------------


def reference_stop(losses, beta, threshold):
    """Index of the step that triggers the stop, by a plain loop."""
    average, best = 0.0, math.inf
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        smoothed = average / (1 - beta ** (i + 1))
        best = min(best, smoothed)
        if not math.isfinite(loss) or smoothed > threshold * best:
            return i
    return None


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_divergence_stops_and_truncates(steps_per_execution):
    model = mlp(steps_per_execution=steps_per_execution)
    counter = IterationsAtEnd()
    start = int(model.optimizer.iterations.numpy())
    result, _ = quietly(
        keras_lr.find_learning_rate,
        model,
        X,
        Y,
        batch_size=BATCH,
        start_lr=1e-4,
        end_lr=1e3,
        num_steps=60,
        seed=3,
        callbacks=[counter],
    )
    assert result.stop_reason == "diverged"
    stop = reference_stop(result.losses, 0.98, 4.0)
    assert stop == len(result.losses) - 1 < 59
    ran = counter.iterations - start
    if steps_per_execution == 1:
        assert ran == len(result.losses)  # nothing after the stop is run
    else:  # the stop waits for the end of the execution
        assert ran == math.ceil(len(result.losses) / 4) * 4


# Restoring, whatever happens -----------------------------------------------

ENDINGS = {
    "finished": dict(end_lr=1e-3),
    "diverged": dict(end_lr=1e3),
    "non_finite": dict(end_lr=1e-3, nan_target=True),
    "keyboard_interrupt": dict(end_lr=1e-3, error=KeyboardInterrupt()),
    "exception": dict(end_lr=1e-3, error=RuntimeError("boom")),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("schedule", [False, True], ids=["float", "schedule"])
def test_restores_bitwise_in_every_ending(ending, schedule):
    spec = ENDINGS[ending]
    lr = (
        keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9)
        if schedule
        else 1e-3
    )
    model = mlp(lr)
    before = snapshot(model)
    y = Y.copy()
    if spec.get("nan_target"):
        y[7] = np.nan
    extra = [RaiseAt(spec["error"], 5)] if "error" in spec else []
    kwargs = dict(
        batch_size=BATCH,
        start_lr=1e-4,
        end_lr=spec["end_lr"],
        num_steps=40,
        seed=0,
        callbacks=extra,
    )
    if "error" in spec:
        with pytest.raises(type(spec["error"])):
            keras_lr.find_learning_rate(model, X, y, **kwargs)
    else:
        result, _ = quietly(keras_lr.find_learning_rate, model, X, y, **kwargs)
        assert result.stop_reason == ending
        if ending == "non_finite":
            assert np.isnan(result.losses[-1])
            assert np.all(np.isfinite(result.losses[:-1]))
    assert_restored(model, before)


def test_training_after_the_test_matches_a_model_that_never_ran_it():
    tested, twin = mlp(), mlp()
    quietly(keras_lr.find_learning_rate, tested, X, Y, end_lr=1e3, seed=0)
    for model in (tested, twin):
        # The dropout masks: on PyTorch unseeded layers draw from torch's
        # global generator, which both models share (elsewhere from a
        # variable of each model, which this leaves alone).
        keras.utils.set_random_seed(1)
        model.fit(X, Y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(tested.variables, twin.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(tested.optimizer.variables, twin.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def counting_linear_model(loss_name="mse"):
    """`linear_model` whose loss counts its Python calls (= traces)."""
    calls = []
    base = keras.losses.get(loss_name)

    def loss(y_true, y_pred):
        calls.append(1)
        return base(y_true, y_pred)

    model = linear_model(keras.optimizers.SGD(0.01))
    model.compile(keras.optimizers.SGD(0.01), loss)
    # A curve table of 256 steps: the 130-step test below then grows only
    # the loss record, not the controller's table (which would rebuild the
    # model's own train function).
    prepare(model, 256)
    return model, calls


def test_a_second_test_on_the_same_model_does_not_trace_again():
    model, calls = counting_linear_model()
    sweep = dict(batch_size=BATCH, num_steps=20, seed=1)
    quietly(
        keras_lr.find_learning_rate,
        model,
        X,
        Y,
        start_lr=1e-3,
        end_lr=0.3,
        **sweep,
    )
    # Training in between moves the weights and `iterations`: the next
    # sweep must start from there.
    model.fit(X, Y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    twin, _ = counting_linear_model()
    twin.set_weights(model.get_weights())
    twin.optimizer.build(twin.trainable_variables)
    # A host copy: on JAX the same buffer in two variables would be
    # deleted with the state a train step donates.
    twin.optimizer.iterations.assign(
        keras.ops.convert_to_numpy(model.optimizer.iterations)
    )
    before = snapshot(model)
    traces = len(calls)
    second, _ = quietly(
        keras_lr.find_learning_rate,
        model,
        X,
        Y,
        start_lr=1e-2,
        end_lr=2.0,
        **sweep,
    )
    assert len(calls) == traces
    assert_restored(model, before)
    fresh, _ = quietly(
        keras_lr.find_learning_rate,
        twin,
        X,
        Y,
        start_lr=1e-2,
        end_lr=2.0,
        **sweep,
    )
    np.testing.assert_allclose(
        second.learning_rates, reference_sweep(1e-2, 2.0, 20), rtol=1e-12
    )
    np.testing.assert_array_equal(second.losses, fresh.losses)
    # Another length within the record's capacity (128 steps): same trace.
    longer, _ = quietly(
        keras_lr.find_learning_rate,
        model,
        X,
        Y,
        start_lr=1e-4,
        end_lr=1e-2,
        batch_size=BATCH,
        num_steps=100,
        seed=1,
    )
    assert len(calls) == traces
    np.testing.assert_allclose(
        longer.learning_rates, reference_sweep(1e-4, 1e-2, 100), rtol=1e-12
    )
    assert len(longer.losses) == 100
    # Beyond it, a longer record: traced anew.
    longest, _ = quietly(
        keras_lr.find_learning_rate,
        model,
        X,
        Y,
        start_lr=1e-4,
        end_lr=1e-2,
        batch_size=BATCH,
        num_steps=130,
        seed=1,
    )
    assert len(calls) > traces
    assert len(longest.losses) == 130
    np.testing.assert_allclose(
        longest.learning_rates, reference_sweep(1e-4, 1e-2, 130), rtol=1e-12
    )
    assert longest.losses[0] == longer.losses[0]  # same weights, same batch
    assert_restored(model, before)


def test_the_traced_test_is_kept_off_the_model_and_lets_it_go():
    # Kept in the model's record, not on the model. It refers to the model
    # (a traced function holds its model), so only the last two models
    # tested keep one: an earlier model, dropped, is collected.
    assert traced_test.KEPT_MODELS == 2
    sweep = dict(batch_size=BATCH, num_steps=20, seed=0)
    models = []
    for _ in range(3):
        models.append(linear_model(keras.optimizers.SGD(0.01)))
        quietly(keras_lr.find_learning_rate, models[-1], X, Y, **sweep)
        kept = record(models[-1]).range_test
        assert kept is not None and kept.function is not None
        assert not any(v is kept for v in vars(models[-1]).values())
        assert not [name for name in vars(models[-1]) if "keras_lr" in name]
    assert record(models[1]).range_test is not None
    first = weakref.ref(models.pop(0))
    del kept
    gc.collect()
    assert first() is None


def test_the_first_test_rebuilds_the_train_function_once():
    model = mlp()  # traced train function, no rate controller yet
    own = model.train_function
    quietly(keras_lr.find_learning_rate, model, X, Y, end_lr=1e3, seed=0)
    controller = installed_controller(model.optimizer)
    assert controller is not None and not controller.curve_active
    rebuilt = model.train_function
    assert rebuilt is not own
    # The rebuilt function reads the controller's table: a later curve
    # that fits in it drives training without another rebuild.
    controller.set_curve(np.zeros(20, "float32"), controller.step())
    assert model.train_function is rebuilt
    weights = [v.numpy().copy() for v in model.trainable_variables]
    model.fit(X, Y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    for v, w in zip(model.trainable_variables, weights):
        np.testing.assert_array_equal(v.numpy(), w)
    controller.clear_curve()
    # A second test finds everything in place and puts it all back.
    quietly(keras_lr.find_learning_rate, model, X, Y, end_lr=1e3, seed=0)
    assert model.train_function is rebuilt


def test_recompiling_between_tests_uses_the_new_loss():
    model, _ = counting_linear_model("mse")
    sweep = dict(batch_size=BATCH, start_lr=1e-3, end_lr=0.3, num_steps=20)
    quietly(keras_lr.find_learning_rate, model, X, Y, seed=0, **sweep)
    model.compile(keras.optimizers.SGD(0.01), "mae")
    recompiled, _ = quietly(
        keras_lr.find_learning_rate, model, X, Y, seed=0, **sweep
    )
    twin = linear_model(keras.optimizers.SGD(0.01))
    twin.compile(keras.optimizers.SGD(0.01), "mae")
    fresh, _ = quietly(keras_lr.find_learning_rate, twin, X, Y, seed=0, **sweep)
    np.testing.assert_array_equal(recompiled.losses, fresh.losses)
    # The first step's loss is the MAE of the first batch, not its MSE.
    first = np.random.default_rng([0, 0]).permutation(N)[:BATCH]
    w, b = (v.astype(np.float64) for v in twin.get_weights())
    error = X[first].astype(np.float64) @ w + b - Y[first]
    np.testing.assert_allclose(
        recompiled.losses[0], np.mean(np.abs(error)), rtol=1e-5
    )


def test_callback_restores_at_the_end_of_a_plain_fit():
    model = mlp()
    before = snapshot(model)
    finder = keras_lr.callbacks.LRRangeTest(start_lr=1e-4, end_lr=1e3)
    quietly(model.fit, X, Y, batch_size=BATCH, epochs=50, callbacks=[finder])
    assert finder.result.stop_reason == "diverged"
    before["stop_training"] = True  # the callback stopped this fit
    assert_restored(model, before)


def test_callback_as_context_manager_restores_after_an_exception():
    model = mlp()
    before = snapshot(model)
    finder = keras_lr.callbacks.LRRangeTest(num_steps=40)
    with pytest.raises(RuntimeError, match="boom"):
        with finder:
            model.fit(
                X,
                Y,
                epochs=5,
                verbose=0,
                callbacks=[finder, RaiseAt(RuntimeError("boom"), 1)],
            )
    assert_restored(model, before)


class OwnLoss(keras.Model):
    """A model whose train_step computes its loss without compute_loss."""

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = keras.ops.mean((self(x) - y) ** 2)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {"loss": loss}


@pytest.mark.tensorflow_only
def test_train_step_without_compute_loss_is_a_clear_error():
    inputs = keras.Input((FEATURES,))
    model = OwnLoss(inputs, keras.layers.Dense(1)(inputs))
    model.compile(keras.optimizers.SGD(0.01), "mse")
    model.fit(X, Y, epochs=1, verbose=0)
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="does not call `self.compute_loss`"):
        keras_lr.find_learning_rate(model, X, Y, num_steps=20)
    assert_restored(model, before)


def test_unbuilt_optimizer_is_built_and_left_at_its_start():
    model = mlp(warm=False)
    result, _ = quietly(
        keras_lr.find_learning_rate, model, X, Y, end_lr=1e3, seed=0
    )
    assert model.optimizer.iterations.numpy() == 0
    # Adam's two slots per weight (on JAX the rate controller's variables
    # follow them).
    slots = 2 + 2 * len(model.trainable_variables)
    for v in model.optimizer.variables[2:slots]:
        np.testing.assert_array_equal(v.numpy(), np.zeros_like(v.numpy()))
    assert len(result.losses) > 10


# Repeats, data and warnings ------------------------------------------------


def test_repeats_reshuffle_and_report_the_spread():
    model = mlp()
    before = snapshot(model)
    kwargs = dict(batch_size=BATCH, end_lr=1e3, num_steps=50, repeats=3)
    result, _ = quietly(
        keras_lr.find_learning_rate, model, X, Y, seed=5, **kwargs
    )
    assert result.repeats == 3
    assert not np.array_equal(result.runs[0].losses, result.runs[1].losses)
    # Same start state: the first step sees the same weights in each run,
    # only the batch differs; the same seed reproduces every run exactly.
    again, _ = quietly(
        keras_lr.find_learning_rate, model, X, Y, seed=5, **kwargs
    )
    for a, b in zip(result.runs, again.runs):
        np.testing.assert_array_equal(a.losses, b.losses)
    spread = result.suggestion_spread("valley")
    values = np.array(spread["values"])
    assert spread["geometric_mean"] == pytest.approx(
        float(np.exp(np.mean(np.log(values))))
    )
    assert spread["min"] == values.min() and spread["max"] == values.max()
    assert_restored(model, before)


def test_tf_data_input_is_repeated_across_epochs():
    model = linear_model(keras.optimizers.SGD(0.01))
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(BATCH)
    result, _ = quietly(
        keras_lr.find_learning_rate,
        model,
        dataset,
        start_lr=1e-3,
        end_lr=0.3,
        num_steps=20,
    )
    w0 = np.full((FEATURES, 1), 0.1, "float32")
    lrs = reference_sweep(1e-3, 0.3, 20)
    expected = reference_sgd_losses(w0, np.zeros(1), X, Y, lrs, BATCH)
    np.testing.assert_allclose(result.losses, expected, rtol=2e-5)


# The curve depends on the initial weights, which differ by backend.
@pytest.mark.tensorflow_only
def test_warns_when_the_loss_never_diverged():
    model = mlp()
    with pytest.warns(UserWarning) as record:
        keras_lr.find_learning_rate(
            model, X, Y, end_lr=1e-3, num_steps=20, seed=0
        )
    text = " ".join(str(w.message) for w in record)
    assert "never diverged" in text and "raise `end_lr`" in text


def test_warns_when_the_loss_diverged_at_once():
    model = linear_model(keras.optimizers.SGD(0.01))
    with pytest.warns(UserWarning) as record:
        result = keras_lr.find_learning_rate(
            model, X, Y, start_lr=50.0, end_lr=1e4, num_steps=50, seed=0
        )
    assert len(result.losses) <= 5
    text = " ".join(str(w.message) for w in record)
    assert "lower `start_lr`" in text


def test_summary_and_state_protocol():
    model = mlp()
    finder = keras_lr.callbacks.LRRangeTest(start_lr=1e-4, end_lr=1e3)
    quietly(model.fit, X, Y, batch_size=BATCH, epochs=50, callbacks=[finder])
    steps = len(finder.result.losses)
    assert finder.summary().startswith(
        f"LRRangeTest: {steps}/100 steps, stopped: smoothed loss above 4x "
        "its best; suggested learning rate (valley): "
    )
    state = json.loads(json.dumps(finder.get_state()))
    assert state["stop_reason"] == "diverged"
    np.testing.assert_array_equal(state["losses"], finder.result.losses)
    # A second fit starts fresh ...
    quietly(model.fit, X, Y, batch_size=BATCH, epochs=1, callbacks=[finder])
    assert len(finder.result.losses) == N // BATCH
    # ... unless it resumes from a saved state.
    resumed = keras_lr.callbacks.LRRangeTest(start_lr=1e-4, end_lr=1e3)
    resumed.set_state({"losses": state["losses"][:5], "stop_reason": None})
    quietly(model.fit, X, Y, batch_size=BATCH, epochs=1, callbacks=[resumed])
    assert resumed.result.losses[:5].tolist() == state["losses"][:5]
    assert len(resumed.result.losses) == 5 + N // BATCH


# Bad input -----------------------------------------------------------------

BAD = [
    (dict(start_lr=1.0, end_lr=1.0), "`end_lr` must be > `start_lr`"),
    (dict(start_lr=0.0), "`start_lr` must be > 0"),
    (dict(end_lr=-1.0), "`end_lr` must be > 0"),
    (dict(num_steps=5), "`num_steps` must be >= 10"),
    (dict(mode="cubic"), "`mode` must be one of"),
    (dict(beta=1.0), "`beta` must be in"),
    (dict(diverge_threshold=1.0), "`diverge_threshold` must be > 1"),
]


@pytest.mark.parametrize("kwargs,message", BAD)
def test_bad_arguments_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        keras_lr.callbacks.LRRangeTest(**kwargs)
    with pytest.raises(ValueError, match=message):
        keras_lr.find_learning_rate(mlp(warm=False), X, Y, **kwargs)


def test_uncompiled_model_is_refused():
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="Argument `model` must be a compiled"):
        keras_lr.find_learning_rate(model, X, Y)


def test_bad_repeats_and_batch_size():
    with pytest.raises(ValueError, match="`repeats` must be > 0"):
        keras_lr.find_learning_rate(mlp(warm=False), X, Y, repeats=0)
    with pytest.raises(TypeError, match="`batch_size` must be an integer"):
        keras_lr.find_learning_rate(mlp(warm=False), X, Y, batch_size=3.5)
