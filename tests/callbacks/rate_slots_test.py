"""Rolling back to a saved optimizer state, then running at a new rate:
the slots that carry the rate (SGD's velocity, ...) agree with the new
rate, checked against plain-Python references of the optimizers' updates."""

import inspect
import math

import keras
import numpy as np
import pytest

import keras_lr
from keras_lr.callbacks import _rate_slots
from tests.callbacks import helpers
from tests.callbacks.helpers import Script

pytestmark = pytest.mark.portable

STEPS = 8  # steps per epoch
MU = 0.9



def sgd_epoch(w, v, rate, out):
    """One epoch of Keras' SGD (momentum MU) with gradient 1."""
    for _ in range(STEPS):
        v = MU * v - rate
        w = w + v
        out.append(w)
    return w, v


def fit_bias_model(callbacks, epochs):
    model = helpers.bias_model(keras.optimizers.SGD(0.1, momentum=MU))
    recorder = helpers.BiasRecorder()
    x, y = helpers.zeros_data(STEPS)
    model.fit(
        x,
        y,
        batch_size=helpers.BATCH,
        epochs=epochs,
        verbose=0,
        shuffle=False,
        callbacks=[*callbacks, recorder],
    )
    return model, recorder.values


def test_backtrack_under_sgd_momentum_moves_at_the_new_rate():
    """The issue's case: every epoch cuts and backtracks to one best point.

    Epoch 0 is the best; epochs 1, 2, 3 do not improve, so each cuts the
    rate by half and restores the state of epoch 0, whose velocity was
    built at 0.1: it must start the next epoch scaled to 0.05, then 0.025,
    as if those rates had been in force all along.
    """
    callback = keras_lr.callbacks.ReduceLROnPlateau(
        "loss", factor=0.5, patience=1, min_delta=0.0, backtrack=True
    )
    script = Script("loss", [1.0, 2.0, 2.0, 2.0])
    _, got = fit_bias_model([script, callback], epochs=4)

    want = []
    w0, v0 = sgd_epoch(0.0, 0.0, 0.1, want)  # the best point
    sgd_epoch(w0, v0, 0.1, want)
    for rate in (0.05, 0.025):
        sgd_epoch(w0, v0 * rate / 0.1, rate, want)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # Without the rescale the first step after the first cut would be
    # w0 + MU * v0 - 0.05: far from the reference.
    stale = w0 + MU * v0 - 0.05
    assert abs(got[2 * STEPS] - stale) > 0.1


def test_divergence_guard_rollback_moves_at_the_cut_rate():
    guard = keras_lr.callbacks.DivergenceGuard(factor=0.5, threshold=4.0)
    # Epoch 2 "diverges": back to the state after epoch 1, rate 0.05.
    script = Script("loss", [1.0, 0.9, 100.0, 0.8])
    _, got = fit_bias_model([script, guard], epochs=4)

    want = []
    w, v = sgd_epoch(0.0, 0.0, 0.1, want)
    w1, v1 = sgd_epoch(w, v, 0.1, want)
    sgd_epoch(w1, v1, 0.1, want)
    sgd_epoch(w1, v1 * 0.5, 0.05, want)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def steps(optimizer, variable, rate, count, gradient=1.0):
    """`count` eager steps of `optimizer` at `rate`, constant gradient."""
    optimizer.learning_rate = rate
    grad = keras.ops.convert_to_tensor(
        np.full(variable.shape, gradient, "float32")
    )
    for _ in range(count):
        optimizer.apply_gradients([(grad, variable)])


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.optimizers.SGD(momentum=0.9),
        lambda: keras.optimizers.SGD(momentum=0.9, nesterov=True),
        lambda: keras.optimizers.RMSprop(momentum=0.8),
        lambda: keras.optimizers.RMSprop(momentum=0.8, centered=True),
    ],
    ids=["sgd", "sgd-nesterov", "rmsprop", "rmsprop-centered"],
)
def test_velocity_equals_a_run_at_the_new_rate(make):
    """Under a constant gradient the gradient statistics do not depend on
    the rate: slots built at 0.1 and rescaled to 0.03 equal slots built at
    0.03 (each slot compared; the weights are free to differ)."""
    runs = {}
    for rate in (0.1, 0.03):
        variable = keras.Variable(np.zeros(3, "float32"))
        optimizer = make()
        steps(optimizer, variable, rate, 5, gradient=0.7)
        runs[rate] = optimizer
    _rate_slots.rescale(runs[0.1], 0.1, 0.03)
    slots = {
        rate: [
            np.asarray(v.numpy())
            for v in optimizer.variables
            if v.path.endswith(("momentum", "velocity", "average_gradient"))
        ]
        for rate, optimizer in runs.items()
    }
    assert slots[0.1]
    for got, want in zip(slots[0.1], slots[0.03]):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def ftrl_slots(optimizer):
    named = {v.path.rsplit("_", 1)[-1]: v for v in optimizer.variables}
    return (
        np.asarray(named["accumulator"].numpy(), "float64"),
        np.asarray(named["linear"].numpy(), "float64"),
    )


def test_ftrl_next_step_is_a_proximal_step_at_the_new_rate():
    """l1 = l2 = 0: w = -z * lr / (sqrt(n) + beta). After the rescale the
    weights are unchanged and one step at the new rate gives
    w - lr_new * g / (sqrt(n + g**2) + beta), FTRL-Proximal's own step."""
    beta, g = 0.1, np.array([0.5, -1.0, 2.0], "float64")
    variable = keras.Variable(np.zeros(3, "float32"))
    optimizer = keras.optimizers.Ftrl(beta=beta)
    steps(optimizer, variable, 0.2, 4, gradient=1.0)
    w = np.asarray(variable.numpy(), "float64")
    _rate_slots.rescale(optimizer, 0.2, 0.05)
    n, z = ftrl_slots(optimizer)
    np.testing.assert_allclose(-z * 0.05 / (np.sqrt(n) + beta), w, rtol=1e-6)
    optimizer.learning_rate = 0.05
    optimizer.apply_gradients([(g.astype("float32"), variable)])
    want = w - 0.05 * g / (np.sqrt(n + g**2) + beta)
    np.testing.assert_allclose(variable.numpy(), want, rtol=1e-5)


def test_ftrl_with_l1_l2_keeps_the_weights():
    """With l1 and l2 the rescaled `z` gives, at the new rate, the same
    weights the saved `z` gave at the old one (Keras' closed form)."""
    l1, l2, beta = 0.05, 0.3, 0.2
    variable = keras.Variable(np.array([0.5, 0.0, -0.3], "float32"))
    optimizer = keras.optimizers.Ftrl(
        l1_regularization_strength=l1,
        l2_regularization_strength=l2,
        beta=beta,
    )
    optimizer.learning_rate = 0.3
    for g in ([1.0, 0.01, -2.0], [0.5, -0.02, -1.0]):
        optimizer.apply_gradients([(np.array(g, "float32"), variable)])
    w = np.asarray(variable.numpy(), "float64")
    _rate_slots.rescale(optimizer, 0.3, 0.1)
    n, z = ftrl_slots(optimizer)
    q = (np.sqrt(n) + beta) / 0.1 + 2 * l2
    np.testing.assert_allclose((np.clip(z, -l1, l1) - z) / q, w, atol=1e-7)
    assert w[1] == 0.0  # |z| <= l1 there: left as it was


def keras_optimizer_classes():
    return sorted(
        (
            value
            for value in vars(keras.optimizers).values()
            if inspect.isclass(value)
            and issubclass(value, keras.optimizers.Optimizer)
        ),
        key=lambda c: c.__name__,
    )


# Classes without a rule of their own: the base class, a wrapper whose
# rule is its inner optimizer's, and one holding several optimizers.
WITHOUT_RULE = {"Optimizer", "LossScaleOptimizer", "MultiOptimizer"}


@pytest.mark.parametrize(
    "cls", keras_optimizer_classes(), ids=lambda c: c.__name__
)
def test_every_keras_optimizer_has_a_declared_rule(cls):
    """A Keras upgrade that adds an optimizer fails here until its slots
    are read and its rule declared in `_rate_slots.RULES`."""
    assert (cls in _rate_slots.RULES) != (cls.__name__ in WITHOUT_RULE)
    assert cls.__name__ in (_rate_slots.__doc__ or "") or (
        cls.__name__ in WITHOUT_RULE
    )


def test_unknown_optimizer_warns_and_keeps_its_slots():
    class Custom(keras.optimizers.SGD):
        pass

    variable = keras.Variable(np.zeros(2, "float32"))
    optimizer = Custom(momentum=0.9)
    steps(optimizer, variable, 0.1, 2)
    before = [np.asarray(v.numpy()) for v in optimizer.variables]
    with pytest.warns(UserWarning, match="Custom.*carry the learning rate"):
        _rate_slots.rescale(optimizer, 0.1, 0.05)
    for v, b in zip(optimizer.variables, before):
        np.testing.assert_array_equal(v.numpy(), b)
    # Nothing to say when the rate did not change.
    _rate_slots.rescale(optimizer, 0.1, 0.1)


def test_loss_scale_wrapper_uses_the_inner_rule():
    variable = keras.Variable(np.zeros(2, "float32"))
    inner = keras.optimizers.SGD(momentum=0.9)
    optimizer = keras.optimizers.LossScaleOptimizer(inner)
    optimizer.build([variable])
    velocity = next(v for v in inner.variables if v.path.endswith("momentum"))
    velocity.assign(np.array([-0.3, 0.6], "float32"))
    _rate_slots.rescale(optimizer, 0.2, 0.05)
    np.testing.assert_allclose(velocity.numpy(), [-0.075, 0.15], rtol=1e-7)
    assert math.isfinite(float(optimizer.dynamic_scale.numpy()))


def test_snapshot_arrays_carry_the_rate_and_read_old_backups():
    from keras_lr.callbacks import _rules

    model, _ = fit_bias_model([], epochs=1)
    saved = _rules.Snapshot(model, 0.1)
    arrays = saved.to_arrays()
    assert sorted(arrays) == ["optimizer", "rate", "weights"]
    assert _rules.Snapshot.from_arrays(arrays).rate == 0.1
    # A backup written before the rate was saved: slots restored as saved.
    old = _rules.Snapshot.from_arrays(
        {"weights": arrays["weights"], "optimizer": arrays["optimizer"]}
    )
    assert old.rate is None
    old.restore(model, 0.05)
    state = keras_lr.snapshot.optimizer_state(model)
    assert [v.path.rsplit("_", 1)[-1] for v in state] == ["momentum"] * 2
    for variable, value in zip(state, saved.optimizer):
        np.testing.assert_array_equal(variable.numpy(), value)
