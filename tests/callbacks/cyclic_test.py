"""CyclicLR and OneCycleLR: the rate and momentum at every optimizer step."""

import json

import keras
import numpy as np
import pytest
from keras import ops

import keras_lr
from tests.callbacks import helpers
from tests.schedules.reference import torch_cyclic
from tests.schedules.reference import torch_one_cycle

pytestmark = pytest.mark.portable

STEPS_PER_EPOCH = 8
EPOCHS = 3
TOTAL = STEPS_PER_EPOCH * EPOCHS
RTOL = 2e-5  # float32 training against float64 references


def torch_cyclic_momentum(
    step, base_m, max_m, up, down=None, mode="triangular"
):
    """PyTorch `CyclicLR`: momentum = max - (max - base) * wave * scale."""
    # The wave times the scale is the rate's own shape on [0, 1].
    shape = torch_cyclic(step, 0.0, 1.0, up, down, mode)
    return max_m - (max_m - base_m) * shape


def torch_one_cycle_momentum(step, total, base_m, max_m, pct, three_phase):
    """PyTorch `OneCycleLR` momentum phases, cosine annealing."""

    def cos(start, end, pct):
        return end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1)

    if three_phase:
        phases = [
            (float(pct * total) - 1, max_m, base_m),
            (float(2 * pct * total) - 2, base_m, max_m),
            (total - 1, max_m, max_m),
        ]
    else:
        phases = [
            (float(pct * total) - 1, max_m, base_m),
            (total - 1, base_m, max_m),
        ]
    start_step = 0
    for i, (end_step, start, end) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            return cos(
                start, end, (step - start_step) / (end_step - start_step)
            )
        start_step = end_step


def fit(model, callback, epochs=EPOCHS, recorder=None):
    x, y = helpers.zeros_data(STEPS_PER_EPOCH)
    callbacks = [callback] + ([recorder] if recorder else [])
    return model.fit(
        x,
        y,
        batch_size=helpers.BATCH,
        epochs=epochs,
        verbose=0,
        shuffle=False,
        callbacks=callbacks,
    )


@pytest.mark.parametrize("steps_per_execution", [1, 4])
@pytest.mark.parametrize(
    "mode,down", [("triangular", None), ("triangular2", 3), ("exp_range", 5)]
)
def test_cyclic_sgd_every_step(steps_per_execution, mode, down):
    gamma = 0.97 if mode == "exp_range" else 1.0
    model = helpers.bias_model(
        keras.optimizers.SGD(0.5, momentum=0.9), steps_per_execution
    )
    callback = keras_lr.callbacks.CyclicLR(
        0.01, 0.1, step_size=5, mode=mode, gamma=gamma, step_size_down=down
    )
    recorder = helpers.BiasRecorder()
    fit(model, callback, recorder=recorder)

    def rate(s):
        return torch_cyclic(s, 0.01, 0.1, 5, down, mode, gamma)

    def momentum(s):
        shape = (rate(s) - 0.01) / (0.1 - 0.01)
        return 0.95 - (0.95 - 0.85) * shape

    steps = range(TOTAL)
    if mode != "exp_range":
        np.testing.assert_allclose(
            [momentum(s) for s in steps],
            [
                torch_cyclic_momentum(s, 0.85, 0.95, 5, down, mode)
                for s in steps
            ],
            rtol=1e-12,
        )
    expected = helpers.sgd_trajectory(
        [rate(s) for s in steps], [momentum(s) for s in steps]
    )
    # One recorded value per executed batch: every N-th step.
    expected_seen = expected[steps_per_execution - 1 :: steps_per_execution]
    np.testing.assert_allclose(recorder.values, expected_seen, rtol=RTOL)


def test_cyclic_holding_rate_would_be_detected():
    """The trajectory check is sharp: a rate held for 4 steps differs."""
    rates = [torch_cyclic(s, 0.01, 0.1, 5) for s in range(TOTAL)]
    held = [rates[s - s % 4] for s in range(TOTAL)]
    exact = helpers.sgd_trajectory(rates, [0.9] * TOTAL)
    stale = helpers.sgd_trajectory(held, [0.9] * TOTAL)
    assert abs(exact[-1] - stale[-1]) > 100 * RTOL * abs(exact[-1])


@pytest.mark.parametrize("steps_per_execution", [1, 4])
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_adam_every_step(steps_per_execution, three_phase):
    model = helpers.bias_model(keras.optimizers.Adam(), steps_per_execution)
    callback = keras_lr.callbacks.OneCycleLR(
        0.1, pct_start=0.25, three_phase=three_phase
    )
    recorder = helpers.BiasRecorder()
    history = fit(model, callback, recorder=recorder)
    steps = range(TOTAL)
    rates = [
        torch_one_cycle(s, 0.1, TOTAL, 0.25, three_phase=three_phase)
        for s in steps
    ]
    betas = [
        torch_one_cycle_momentum(s, TOTAL, 0.85, 0.95, 0.25, three_phase)
        for s in steps
    ]
    expected = helpers.adam_trajectory(rates, betas)
    expected_seen = expected[steps_per_execution - 1 :: steps_per_execution]
    np.testing.assert_allclose(recorder.values, expected_seen, rtol=RTOL)
    # Epoch logs carry the rate and beta_1 for the next step.
    next_steps = [STEPS_PER_EPOCH * (e + 1) for e in range(EPOCHS)]
    np.testing.assert_allclose(
        history.history["learning_rate"],
        [
            torch_one_cycle(
                min(s, TOTAL - 1), 0.1, TOTAL, 0.25, three_phase=three_phase
            )
            for s in next_steps
        ],
        rtol=RTOL,
    )
    np.testing.assert_allclose(
        history.history["beta_1"],
        [
            torch_one_cycle_momentum(
                min(s, TOTAL - 1), TOTAL, 0.85, 0.95, 0.25, three_phase
            )
            for s in next_steps
        ],
        rtol=RTOL,
    )


def test_one_cycle_explicit_total_and_linear_sgd_nesterov():
    model = helpers.bias_model(
        keras.optimizers.SGD(momentum=0.9, nesterov=True)
    )
    callback = keras_lr.callbacks.OneCycleLR(
        0.2,
        total_steps=20,
        anneal_strategy="linear",
        base_momentum=0.8,
        max_momentum=0.9,
    )
    recorder = helpers.BiasRecorder()
    fit(model, callback, recorder=recorder)
    steps = range(TOTAL)  # 4 steps past the planned end: held final value
    rates = [
        torch_one_cycle(min(s, 19), 0.2, 20, anneal="linear") for s in steps
    ]
    # Linear momentum: the rate's shape mirrored between 0.9 and 0.8.
    initial, peak = 0.2 / 25, 0.2
    final = initial / 1e4
    moms = []
    for s in steps:
        r = rates[s]
        if min(s, 19) <= 0.3 * 20 - 1:
            moms.append(0.9 - 0.1 * (r - initial) / (peak - initial))
        else:
            moms.append(0.8 + 0.1 * (peak - r) / (peak - final))
    expected = helpers.sgd_trajectory(rates, moms, nesterov=True)
    np.testing.assert_allclose(recorder.values, expected, rtol=RTOL)


def test_optimizer_after_training_and_save_midway(tmp_path):
    """Plain floats after fit; a mid-training save loads back."""
    optimizer = keras.optimizers.SGD(0.5, momentum=0.9)
    model = helpers.bias_model(optimizer)
    path = str(tmp_path / "mid.keras")

    class SaveMidway(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.model.save(path)
                self.config = self.model.optimizer.get_config()
                self.n_variables = len(self.model.optimizer.variables)

    saver = SaveMidway()
    callback = keras_lr.callbacks.OneCycleLR(0.1)
    x, y = helpers.zeros_data(STEPS_PER_EPOCH)
    model.fit(
        x,
        y,
        batch_size=helpers.BATCH,
        epochs=EPOCHS,
        verbose=0,
        callbacks=[callback, saver],
    )
    # The momentum a mid-training config writes: the user's (the curve's
    # value converts in-graph) or, on PyTorch, where the momentum is set
    # as a number before each step, that of the last step run.
    if keras.backend.backend() == "torch":
        want = torch_one_cycle_momentum(
            STEPS_PER_EPOCH - 1, TOTAL, 0.85, 0.95, 0.3, False
        )
    else:
        want = 0.9
    saved_momentum = json.loads(json.dumps(saver.config))["momentum"]
    assert saved_momentum == pytest.approx(want, rel=1e-6)
    # The rate controller saves as the user's rate (the curve belongs to
    # the callback): a float, so the saved optimizer variables, the rate
    # variable included, match what loading rebuilds.
    saved = saver.config["learning_rate"]
    assert saved["class_name"] == "RateController"
    assert saved["config"]["learning_rate"] == pytest.approx(0.5)
    assert saver.n_variables == len(optimizer.variables)
    loaded = keras.saving.load_model(path, compile=True)
    assert type(loaded.optimizer.momentum) is float
    assert keras_lr.control.installed_controller(loaded.optimizer) is None
    assert float(ops.convert_to_numpy(loaded.optimizer.learning_rate)) == (
        pytest.approx(0.5)
    )
    assert int(ops.convert_to_numpy(loaded.optimizer.iterations)) == (
        STEPS_PER_EPOCH
    )

    # After training: the float rate holds the last rate of the curve,
    # the momentum the last momentum; the curves are off.
    controller = keras_lr.control.installed_controller(optimizer)
    assert not controller.curve_active
    assert isinstance(controller.learning_rate, keras.Variable)
    assert float(optimizer.momentum) == pytest.approx(0.95, rel=1e-6)
    last = torch_one_cycle(TOTAL - 1, 0.1, TOTAL)
    assert float(ops.convert_to_numpy(optimizer.learning_rate)) == (
        pytest.approx(last, rel=1e-4)
    )
    config = optimizer.get_config()
    assert config["learning_rate"]["config"]["learning_rate"] == (
        pytest.approx(last, rel=1e-4)
    )
    assert type(config["momentum"]) is not str
    assert json.loads(json.dumps(config))["momentum"] == (
        pytest.approx(0.95, rel=1e-6)
    )


def test_second_fit_starts_a_new_cycle_and_state_resumes():
    x, y = helpers.zeros_data(STEPS_PER_EPOCH)
    rates = [torch_cyclic(s, 0.01, 0.1, 6) for s in range(TOTAL)]
    moms = [0.95 - 0.1 * (r - 0.01) / 0.09 for r in rates]
    kwargs = dict(batch_size=helpers.BATCH, verbose=0, shuffle=False)

    # Two fit() calls: the second starts its own cycle at step 0.
    model = helpers.bias_model(keras.optimizers.SGD(momentum=0.9))
    callback = keras_lr.callbacks.CyclicLR(0.01, 0.1, step_size=6)
    model.fit(x, y, epochs=1, callbacks=[callback], **kwargs)
    assert callback.get_state() == {"start_iteration": 0}
    first = helpers.bias(model)
    recorder = helpers.BiasRecorder()
    model.fit(x, y, epochs=1, callbacks=[callback, recorder], **kwargs)
    assert callback.get_state() == {"start_iteration": STEPS_PER_EPOCH}
    np.testing.assert_allclose(
        first,
        helpers.sgd_trajectory(rates, moms)[STEPS_PER_EPOCH - 1],
        rtol=RTOL,
    )
    # Fresh cycle, but the velocity carries over: simulate both epochs.
    n = STEPS_PER_EPOCH
    both = helpers.sgd_trajectory(rates[:n] + rates[:n], moms[:n] + moms[:n])
    np.testing.assert_allclose(recorder.values, both[n:], rtol=RTOL)

    # Resume: a new callback given the state continues the same cycle.
    model = helpers.bias_model(keras.optimizers.SGD(momentum=0.9))
    callback = keras_lr.callbacks.CyclicLR(0.01, 0.1, step_size=6)
    model.fit(x, y, epochs=1, callbacks=[callback], **kwargs)
    state = json.loads(json.dumps(callback.get_state()))
    resumed = keras_lr.callbacks.CyclicLR(0.01, 0.1, step_size=6)
    resumed.set_state(state)
    recorder = helpers.BiasRecorder()
    model.fit(x, y, epochs=2, callbacks=[resumed, recorder], **kwargs)
    np.testing.assert_allclose(
        recorder.values, helpers.sgd_trajectory(rates, moms)[n:], rtol=RTOL
    )


def test_one_cycle_state_keeps_total_steps():
    callback = keras_lr.callbacks.OneCycleLR(0.1)
    model = helpers.bias_model(keras.optimizers.Adam())
    fit(model, callback, epochs=2)
    assert callback.get_state() == {
        "start_iteration": 0,
        "total_steps": 2 * STEPS_PER_EPOCH,
    }


def test_momentum_errors():
    x, y = helpers.zeros_data(8)
    model = helpers.bias_model(keras.optimizers.SGD())
    with pytest.raises(ValueError, match="momentum=0.0"):
        model.fit(
            x,
            y,
            callbacks=[
                keras_lr.callbacks.CyclicLR(0.1, 1.0, 2, cycle_momentum=True)
            ],
            verbose=0,
        )
    # Nothing was changed by the failed start.
    assert float(ops.convert_to_numpy(model.optimizer.learning_rate)) == (
        pytest.approx(0.01)
    )
    assert model.optimizer.momentum == 0.0


    model = helpers.bias_model(keras.optimizers.Adagrad())
    with pytest.raises(ValueError, match="neither"):
        model.fit(
            x,
            y,
            callbacks=[
                keras_lr.callbacks.OneCycleLR(0.1, cycle_momentum=True)
            ],
            verbose=0,
        )
    # Without momentum cycling any optimizer works.
    model.fit(
        x,
        y,
        verbose=0,
        batch_size=helpers.BATCH,
        callbacks=[keras_lr.callbacks.OneCycleLR(0.1, cycle_momentum=False)],
    )


@pytest.mark.parametrize(
    "make_callback",
    [
        lambda: keras_lr.callbacks.CyclicLR(0.01, 0.1, step_size=6),
        lambda: keras_lr.callbacks.OneCycleLR(0.1),
    ],
)
def test_defaults_on_plain_sgd(make_callback):
    """With defaults, both callbacks run on an SGD without momentum and
    cycle the rate only."""
    model = helpers.bias_model(keras.optimizers.SGD())
    recorder = helpers.BiasRecorder()
    callback = make_callback()
    fit(model, callback, recorder=recorder)
    if isinstance(callback, keras_lr.callbacks.CyclicLR):
        rates = [torch_cyclic(s, 0.01, 0.1, 6) for s in range(TOTAL)]
    else:
        rates = [torch_one_cycle(s, 0.1, TOTAL) for s in range(TOTAL)]
    np.testing.assert_allclose(
        recorder.values,
        helpers.sgd_trajectory(rates, [0.0] * TOTAL),
        rtol=RTOL,
    )
    assert model.optimizer.momentum == 0.0


def test_argument_errors():
    with pytest.raises(ValueError, match="maximal_learning_rate"):
        keras_lr.callbacks.CyclicLR(0.1, 0.01, 2)
    with pytest.raises(ValueError, match="pct_start"):
        keras_lr.callbacks.OneCycleLR(0.1, pct_start=1.5)
    with pytest.raises(ValueError, match="base_momentum"):
        keras_lr.callbacks.OneCycleLR(0.1, base_momentum=1.5)
    with pytest.raises(TypeError, match="cycle_momentum"):
        keras_lr.callbacks.OneCycleLR(0.1, cycle_momentum="yes")


@pytest.mark.tensorflow_only
def test_unknown_epoch_length_evaluates_in_graph():
    """No table without a known length: the formula runs at every step."""
    import tensorflow as tf

    x, y = helpers.zeros_data(STEPS_PER_EPOCH)
    # `filter` hides the cardinality from `fit`.
    data = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(helpers.BATCH)
        .filter(lambda a, b: True)
    )
    model = helpers.bias_model(keras.optimizers.SGD(momentum=0.9))
    callback = keras_lr.callbacks.CyclicLR(
        0.01, 0.1, step_size=5, mode="triangular2"
    )
    recorder = helpers.BiasRecorder()

    class Observe(keras.callbacks.Callback):
        """The curve as the optimizer sees it, during training."""

        def on_train_batch_end(self, batch, logs=None):
            controller = keras_lr.control.installed_controller(
                self.model.optimizer
            )
            seen.append((controller.curve_active, controller.current()))

    seen = []
    # Keras says so once it finds the end of an epoch of unknown length.
    with pytest.warns(UserWarning, match="ran out of data"):
        model.fit(
            data,
            epochs=2,
            verbose=0,
            shuffle=False,
            callbacks=[callback, recorder, Observe()],
        )
    assert len(seen) == 16
    assert all(active for active, _ in seen)
    # Keras counts one optimizer iteration more than the updates it ran in
    # an epoch of unknown length (the failed fetch at the end: 9 after 8),
    # and every in-graph schedule, Keras' own too, follows the counter.
    steps = list(range(8)) + list(range(9, 17))
    rates = [torch_cyclic(s, 0.01, 0.1, 5, mode="triangular2") for s in steps]
    moms = [
        torch_cyclic_momentum(s, 0.85, 0.95, 5, mode="triangular2")
        for s in steps
    ]
    np.testing.assert_allclose(
        recorder.values, helpers.sgd_trajectory(rates, moms), rtol=RTOL
    )
    # After each step, the rate of the next one (the counter skips 9).
    following = list(range(1, 9)) + list(range(10, 18))
    expected = [
        torch_cyclic(s, 0.01, 0.1, 5, mode="triangular2") for s in following
    ]
    np.testing.assert_allclose(
        [rate for _, rate in seen], expected, rtol=1e-6
    )
