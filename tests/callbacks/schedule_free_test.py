"""SwapScheduleFreeWeights against a plain-numpy schedule-free AdamW.

A linear model with mean squared error has a closed-form gradient, so the
whole schedule-free AdamW run (the training point `y`, the sequence `z`
and the average `x`) is written below in float64 numpy, independently of
Keras and of keras_lr.
"""

import keras
import numpy as np
import pytest

import keras_lr
from keras_lr.callbacks.schedule_free import SwapScheduleFreeWeights
from keras_lr.callbacks.schedule_free import averaged_from_training
from keras_lr.callbacks.schedule_free import training_from_averaged

pytestmark = pytest.mark.portable

LR, BETA_1, BETA_2, EPSILON = 0.05, 0.9, 0.999, 1e-8
BATCH, EPOCHS = 4, 3
KERNEL0 = np.array([[0.3], [-0.1], [0.2]])
BIAS0 = np.array([0.1])

rng = np.random.default_rng(0)
X = rng.normal(size=(16, 3)).astype("float32")
T = (X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype("float32")
X_VAL = rng.normal(size=(8, 3)).astype("float32")
T_VAL = (X_VAL @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype("float32")


# Keras' `momentum.value` is the live variable on TensorFlow and PyTorch
# (updated in place), an immutable array on JAX.
LIVE_MOMENTUM = keras.backend.backend() != "jax"


def reference(epochs=EPOCHS, as_keras=LIVE_MOMENTUM):
    """Per epoch: (y, z, x) after it, each a [kernel, bias] list, from
    schedule-free AdamW (Defazio et al., 2024) on mean squared error.

    `as_keras`: Keras 3.15 on TensorFlow (and PyTorch) reads
    `momentum.value` (the live variable) as "momentum_old" after updating
    it, so the previous average it recovers from `y` uses the new `z`:
    `x_old - (1 - beta_1) / beta_1 * (z_new - z_old)`; on JAX the value
    read is the old one, as in the paper. The relation
    `y = (1 - beta_1) z + beta_1 x` holds after every step either way."""
    y = [KERNEL0.copy(), BIAS0.copy()]
    z = [p.copy() for p in y]
    x = [p.copy() for p in y]
    v = [np.zeros_like(p) for p in y]
    t, out = 0, []
    x64, t64 = X.astype(np.float64), T.astype(np.float64)
    for _ in range(epochs):
        for start in range(0, len(X), BATCH):
            xb, tb = x64[start : start + BATCH], t64[start : start + BATCH]
            residual = xb @ y[0] + y[1] - tb
            grads = [2 * xb.T @ residual / len(xb), 2 * residual.mean(0)]
            t += 1
            for i, g in enumerate(grads):
                v[i] = BETA_2 * v[i] + (1 - BETA_2) * g**2
                denom = np.sqrt(v[i] / (1 - BETA_2**t)) + EPSILON
                z_old = z[i]
                z[i] = z[i] - LR * g / denom
                if as_keras:
                    x[i] = x[i] - (1 - BETA_1) / BETA_1 * (z[i] - z_old)
                x[i] = (1 - 1 / t) * x[i] + (1 / t) * z[i]
                y[i] = (1 - BETA_1) * z[i] + BETA_1 * x[i]
        out.append(tuple([p.copy() for p in q] for q in (y, z, x)))
    return out


def mse(params, inputs, targets):
    prediction = inputs.astype(np.float64) @ params[0] + params[1]
    return float(np.mean((prediction - targets) ** 2))


def linear_model(build=True):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.set_weights([KERNEL0.astype("float32"), BIAS0.astype("float32")])
    model.compile(
        keras.optimizers.ScheduleFreeAdamW(
            LR, beta_1=BETA_1, beta_2=BETA_2, epsilon=EPSILON
        ),
        "mse",
    )
    if build:
        # Eagerly: built inside `fit`'s traced step, Keras starts `z` at 0
        # (see the next test).
        model.optimizer.build(model.trainable_variables)
    return model


def fit(model, callbacks, epochs=EPOCHS, validation=True, initial_epoch=0):
    return model.fit(
        X,
        T,
        batch_size=BATCH,
        epochs=epochs,
        initial_epoch=initial_epoch,
        shuffle=False,
        verbose=0,
        validation_data=(X_VAL, T_VAL) if validation else None,
        callbacks=callbacks,
    )


def assert_params(model_or_weights, expected, rtol=2e-5, atol=2e-6):
    weights = (
        model_or_weights.get_weights()
        if isinstance(model_or_weights, keras.Model)
        else model_or_weights
    )
    assert len(weights) == len(expected)
    for got, want in zip(weights, expected):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def test_reference_is_schedule_free():
    """Sanity of the reference itself: it trains (the averaged point's
    loss falls below the start's), x and y differ, and Keras'
    reading of the old average changes the result (so the tests below
    can tell the two apart)."""
    start = mse([KERNEL0, BIAS0], X, T)
    finals = {}
    for as_keras in (True, False):
        y, z, x = reference(as_keras=as_keras)[-1]
        assert mse(x, X, T) < 0.8 * start
        assert not np.allclose(x[0], y[0], atol=1e-3)
        finals[as_keras] = x[0]
    assert not np.allclose(finals[True], finals[False], rtol=1e-6, atol=0)


def test_keras_recovers_the_previous_average_with_the_new_z():
    model = linear_model()
    fit(model, [], validation=False)
    assert_params(model, reference()[-1][0])
    if not LIVE_MOMENTUM:
        return
    paper = reference(as_keras=False)[-1][0]
    assert not np.allclose(model.get_weights()[0], paper[0], rtol=1e-3), (
        "Keras' ScheduleFreeAdamW now follows the paper: drop `as_keras`."
    )


def test_callback_builds_the_optimizer_so_z_starts_at_the_weights():
    """Without it, Keras (TensorFlow backend) starts `z` at 0 and the
    first step throws the initial weights away."""
    model = linear_model(build=False)
    fit(model, [], epochs=1, validation=False)
    kernel = model.get_weights()[0]
    if keras.backend.backend() == "tensorflow":
        assert not np.allclose(kernel, reference(1)[-1][0][0], atol=0.05), (
            "Keras now starts z at the weights when it builds "
            "ScheduleFreeAdamW in `fit`: the eager build in on_train_begin "
            "is no longer needed."
        )
    else:  # JAX and PyTorch build it before the first step already.
        assert_params([kernel], [reference(1)[-1][0][0]])
    unbuilt = linear_model(build=False)
    fit(unbuilt, [SwapScheduleFreeWeights()])
    assert_params(unbuilt, reference()[-1][2])


def test_without_callback_fit_leaves_training_point():
    """The problem: Keras leaves `y` in the model and validates at `y`."""
    model = linear_model()
    history = fit(model, [])
    y, _, x = reference()[-1]
    assert_params(model, y)
    assert history.history["val_loss"][-1] == pytest.approx(
        mse(y, X_VAL, T_VAL), rel=1e-5
    )
    assert history.history["val_loss"][-1] != pytest.approx(
        mse(x, X_VAL, T_VAL), rel=1e-3
    )


def test_model_holds_average_after_fit_and_training_point_is_kept():
    model = linear_model()
    callback = SwapScheduleFreeWeights()
    fit(model, [callback])
    y, _, x = reference()[-1]
    assert callback.holds_averaged
    assert_params(model, x)
    callback.to_training()
    assert not callback.holds_averaged
    assert_params(model, y)
    callback.to_averaged()
    assert_params(model, x)


def test_validation_is_at_the_average():
    model = linear_model()
    history = fit(model, [SwapScheduleFreeWeights()])
    expected = [mse(x, X_VAL, T_VAL) for _, _, x in reference()]
    np.testing.assert_allclose(history.history["val_loss"], expected, 1e-5)
    evaluated = model.evaluate(X_VAL, T_VAL, verbose=0)
    assert evaluated == pytest.approx(expected[-1], rel=1e-6)


@pytest.mark.parametrize("validation", [True, False])
def test_epoch_checkpoints_hold_the_average(tmp_path, validation):
    model = linear_model()
    path = str(tmp_path / "w-{epoch}.weights.h5")
    fit(
        model,
        [
            SwapScheduleFreeWeights(),
            keras.callbacks.ModelCheckpoint(path, save_weights_only=True),
        ],
        validation=validation,
    )
    for epoch, (_, _, x) in enumerate(reference(), start=1):
        saved = linear_model()
        saved.optimizer.build(saved.trainable_variables)
        saved.load_weights(path.format(epoch=epoch))
        assert_params(saved, x)


def test_second_fit_with_a_new_callback_continues_from_y():
    """The model was left at `x`; a new callback knows it (the point is
    kept per model) and training continues from `y`."""
    model = linear_model()
    fit(model, [SwapScheduleFreeWeights()], epochs=2)
    callback = SwapScheduleFreeWeights()
    fit(model, [callback], epochs=3, initial_epoch=2)
    y, _, x = reference()[-1]
    assert_params(model, x)
    callback.to_training()
    assert_params(model, y)


@pytest.mark.parametrize("beta_1", [0.99, 0.9, 0.5, 0.1])
def test_round_trip_error_is_a_few_ulps(beta_1):
    """y -> x -> y in float32: within 2 eps (|y| + |z|), and x within
    2 eps (|y| + |z|) / beta_1 of the exact (float64) average."""
    generator = np.random.default_rng(1)
    y = generator.normal(size=20000).astype("float32")
    z = (y + 0.1 * generator.normal(size=20000)).astype("float32")
    x = keras.ops.convert_to_numpy(averaged_from_training(y, z, beta_1))
    back = keras.ops.convert_to_numpy(training_from_averaged(x, z, beta_1))
    eps = np.finfo(np.float32).eps
    scale = np.abs(y).astype(np.float64) + np.abs(z)
    b = np.float64(np.float32(beta_1))
    exact_x = (y.astype(np.float64) - (1 - b) * z) / b
    assert np.all(np.abs(x - exact_x) <= 2 * eps * scale / b)
    assert np.all(np.abs(back.astype(np.float64) - y) <= 2 * eps * scale)


def batchnorm_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(2),
            keras.layers.BatchNormalization(momentum=0.5),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.ScheduleFreeAdamW(LR), "mse")
    return model


def batch_statistics(kernel, bias, batches):
    """Average over batches of the (biased) batch mean and variance of
    the first layer's output."""
    means, variances = [], []
    for batch in batches:
        h = batch.astype(np.float64) @ kernel + bias
        means.append(h.mean(0))
        variances.append(h.var(0))
    return np.mean(means, 0), np.mean(variances, 0)


def test_batchnorm_statistics_are_recalibrated_at_the_average():
    batches = [X[:5], X[5:11], X[11:]]
    callback = SwapScheduleFreeWeights(
        recalibrate_batchnorm=True, calibration_data=batches
    )
    model = batchnorm_model()
    history = fit(model, [callback])
    bn = model.layers[1]
    kernel_x, bias_x = model.layers[0].get_weights()
    mean, variance = batch_statistics(kernel_x, bias_x, batches)
    np.testing.assert_allclose(bn.moving_mean.numpy(), mean, 1e-5, 1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), variance, 1e-5)
    assert bn.momentum == 0.5
    # The last validation ran with these statistics.
    assert history.history["val_loss"][-1] == pytest.approx(
        model.evaluate(X_VAL, T_VAL, verbose=0), rel=1e-6
    )
    # ... which are not those of the training point.
    callback.to_training()
    kernel_y, bias_y = model.layers[0].get_weights()
    mean_y, _ = batch_statistics(kernel_y, bias_y, batches)
    assert not np.allclose(mean_y, mean, rtol=1e-3, atol=1e-4)
    # Recalibration changes no weight: training is as without it.
    plain = batchnorm_model()
    plain_callback = SwapScheduleFreeWeights()
    fit(plain, [plain_callback])
    plain_callback.to_training()
    trainable = [v.numpy() for v in model.trainable_variables]
    for got, want in zip(trainable, plain.trainable_variables):
        np.testing.assert_array_equal(got, want.numpy())


def test_calibration_steps_limit_the_batches():
    batches = [X[:5], X[5:11], X[11:]]
    dataset = keras_lr_free_dataset(batches)
    callback = SwapScheduleFreeWeights(
        recalibrate_batchnorm=True,
        calibration_data=dataset,
        calibration_steps=2,
    )
    model = batchnorm_model()
    fit(model, [callback], epochs=1, validation=False)
    kernel_x, bias_x = model.layers[0].get_weights()
    mean, variance = batch_statistics(kernel_x, bias_x, batches[:2])
    bn = model.layers[1]
    np.testing.assert_allclose(bn.moving_mean.numpy(), mean, 1e-5, 1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), variance, 1e-5)


def keras_lr_free_dataset(batches):
    """A `PyDataset` of `(x, y)` batches (only `x` is used)."""

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return len(batches)

        def __getitem__(self, index):
            return batches[index], np.zeros((len(batches[index]), 1))

    return Batches()


class SwappingSGD(keras.optimizers.SGD):
    """An optimizer with the schedule-free `swap_to_*` API."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def swap_to_eval(self):
        self.calls.append("eval")

    def swap_to_train(self):
        self.calls.append("train")


def test_optimizer_with_swap_methods_is_used_through_them():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    optimizer = SwappingSGD(0.01)
    model.compile(optimizer, "mse")
    fit(model, [SwapScheduleFreeWeights()], epochs=2)
    assert optimizer.calls == ["eval", "train", "eval"]


def test_must_come_before_backup_and_restore(tmp_path):
    model = linear_model()
    with pytest.raises(ValueError, match="must come after"):
        fit(
            model,
            [
                keras_lr.callbacks.BackupAndRestore(str(tmp_path / "b")),
                SwapScheduleFreeWeights(),
            ],
        )


def test_backup_records_which_point_it_holds(tmp_path):
    """Epoch-end backups hold `x`; a restart loads them and continues
    exactly as the uninterrupted run (same expressions for y)."""
    backup = str(tmp_path / "b")

    class Crash(Exception):
        pass

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise Crash

    model = linear_model()
    with pytest.raises(Crash):
        fit(
            model,
            [
                SwapScheduleFreeWeights(),
                keras_lr.callbacks.BackupAndRestore(backup),
                Stop(),
            ],
        )
    resumed = linear_model()
    callback = SwapScheduleFreeWeights()
    fit(resumed, [callback, keras_lr.callbacks.BackupAndRestore(backup)])
    uninterrupted = linear_model()
    fit(uninterrupted, [SwapScheduleFreeWeights()])
    for got, want in zip(resumed.get_weights(), uninterrupted.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert_params(resumed, reference()[-1][2])


def test_wrong_optimizer_is_refused():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(), "mse")
    with pytest.raises(ValueError, match="ScheduleFreeAdamW.*Received: "):
        fit(model, [SwapScheduleFreeWeights()], epochs=1)


def test_recalibration_needs_batchnorm():
    callback = SwapScheduleFreeWeights(
        recalibrate_batchnorm=True, calibration_data=[X]
    )
    with pytest.raises(ValueError, match="no trainable BatchNormalization"):
        fit(linear_model(), [callback], epochs=1)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"recalibrate_batchnorm": True},
            ValueError,
            "`calibration_data` is required",
        ),
        (
            {"calibration_data": [X]},
            ValueError,
            "only used with recalibrate_batchnorm=True",
        ),
        (
            {"recalibrate_batchnorm": True, "calibration_data": X},
            TypeError,
            "must be batches",
        ),
        (
            {
                "recalibrate_batchnorm": True,
                "calibration_data": [X],
                "calibration_steps": 0,
            },
            ValueError,
            "calibration_steps=0",
        ),
        ({"recalibrate_batchnorm": 1}, TypeError, "must be a bool"),
    ],
)
def test_arguments_are_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        SwapScheduleFreeWeights(**kwargs)


def test_empty_calibration_data_is_an_error():
    callback = SwapScheduleFreeWeights(
        recalibrate_batchnorm=True, calibration_data=[]
    )
    with pytest.raises(ValueError, match="yielded no batch"):
        fit(batchnorm_model(), [callback], epochs=1)
