"""AnytimeCooldown on the bias-only model, whose SGD trajectory gives the
rate of every step."""

import json
import math

import keras
import numpy as np
import pytest

from keras_lr.callbacks import anytime_cooldown
from keras_lr.callbacks.anytime_cooldown import AnytimeCooldown
from keras_lr.control import rate_controller
from tests.callbacks import helpers
from tests.callbacks.helpers import Script

pytestmark = pytest.mark.portable

STEPS = 8  # steps per epoch


def shape_reference(t, shape):
    if shape == "linear":
        return 1.0 - t
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return 1.0 - math.sqrt(t)


def expected_rates(total, r0, start, length, shape, final=0.0):
    """Rate of every step: r0, then the cooldown from step `start`."""
    rates = []
    for step in range(total):
        if step < start:
            rates.append(r0)
            continue
        t = min(step - start, length) / length
        f = shape_reference(t, shape)
        rates.append(float(np.float32(r0 * f + final * (1.0 - f))))
    return rates



def fit(model, callbacks, epochs, initial_epoch=0):
    x, y = helpers.zeros_data(STEPS)
    recorder = helpers.BiasRecorder()
    history = model.fit(
        x,
        y,
        batch_size=helpers.BATCH,
        epochs=epochs,
        initial_epoch=initial_epoch,
        verbose=0,
        shuffle=False,
        callbacks=[*callbacks, recorder],
    )
    return recorder.values, history


def check_rates(biases, rates, start_bias=0.0):
    """Bias after each step against SGD with gradient 1 at `rates`."""
    expected = start_bias + np.cumsum(-np.asarray(rates, "float64"))
    assert len(biases) == len(expected)
    np.testing.assert_allclose(biases, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", ["1-sqrt", "linear", "cosine"])
def test_start_epoch_rate_at_every_step(shape):
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    cooldown = AnytimeCooldown(
        decay_steps=12,
        decay_shape=shape,
        final_learning_rate=0.01,
        start_epoch=2,
    )
    biases, history = fit(model, [cooldown], epochs=10)
    # Stops after the cooldown's 12 steps: 16 + 12 steps in all.
    check_rates(biases, expected_rates(28, 0.1, 16, 12, shape, 0.01))
    assert cooldown.start_step == 16
    assert len(history.history["loss"]) == 4
    # A float rate keeps the last rate of the curve: the final rate.
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_runs_on_without_stop_and_ends_at_final_rate():
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    cooldown = AnytimeCooldown(
        decay_steps=10, start_epoch=1, stop_when_done=False
    )
    biases, _ = fit(model, [cooldown], epochs=4)
    check_rates(biases, expected_rates(32, 0.1, 8, 10, "1-sqrt"))
    assert float(model.optimizer.learning_rate) == 0.0


def test_decay_fraction_of_the_run():
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    # 0.25 of 10 epochs x 8 steps: 20 steps.
    cooldown = AnytimeCooldown(decay_fraction=0.25, start_epoch=3)
    biases, _ = fit(model, [cooldown], epochs=10)
    check_rates(biases, expected_rates(44, 0.1, 24, 20, "1-sqrt"))


def test_schedule_with_a_factor_decays_from_the_rate_in_use():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 1000, 1.0)
    model = helpers.bias_model(keras.optimizers.SGD(schedule))
    rate_controller(model).multiply(0.5)
    cooldown = AnytimeCooldown(decay_steps=8, start_epoch=1)
    biases, _ = fit(model, [cooldown], epochs=5)
    check_rates(biases, expected_rates(16, 0.05, 8, 8, "1-sqrt"))


def test_plateau_trigger():
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    # Improves at epochs 0 and 1, then 2 epochs without: starts after
    # epoch index 3, at step 32.
    script = Script("score", [5.0, 4.0, 4.0, 4.5, 1.0, 1.0, 1.0, 1.0])
    cooldown = AnytimeCooldown(
        decay_steps=10,
        decay_shape="linear",
        monitor="score",
        patience=2,
        mode="min",
    )
    biases, _ = fit(model, [script, cooldown], epochs=8)
    check_rates(biases, expected_rates(42, 0.1, 32, 10, "linear"))
    assert cooldown.start_step == 32


def test_plateau_auto_mode_on_loss_never_fires_while_improving():
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    cooldown = AnytimeCooldown(decay_steps=4, monitor="loss", patience=1)
    biases, _ = fit(model, [cooldown], epochs=3)
    check_rates(biases, [0.1] * 24)
    assert not cooldown.started
    assert cooldown.tracker.mode == "min"


class Tick(keras.callbacks.Callback):
    """A fake clock: every training step takes one second."""

    def __init__(self):
        super().__init__()
        self.now = 0.0

    def __call__(self):
        return self.now

    def on_train_batch_end(self, batch, logs=None):
        self.now += 1.0


def test_time_budget_trigger(monkeypatch):
    tick = Tick()
    monkeypatch.setattr(anytime_cooldown, "_clock", tick)
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    cooldown = AnytimeCooldown(decay_steps=12, time_budget=50.0)
    biases, _ = fit(model, [cooldown, tick], epochs=20)
    # Epoch ends at 8, 16, 24, 32 s; after 32 s, 18 s are left and one
    # more epoch (8 s) would leave 10 s < 12 s for the cooldown: it starts
    # at step 32 and ends at step 44 (44 s, within the budget).
    check_rates(biases, expected_rates(44, 0.1, 32, 12, "1-sqrt"))
    assert tick.now == 44.0
    assert cooldown.get_state()["elapsed"] == 44.0


def test_state_reset_across_two_fits():
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    cooldown = AnytimeCooldown(decay_steps=8, start_epoch=1)
    first, _ = fit(model, [cooldown], epochs=5)
    check_rates(first, expected_rates(16, 0.1, 8, 8, "1-sqrt"))
    model.optimizer.learning_rate = 0.2
    second, _ = fit(model, [cooldown], epochs=5)
    # A new run: stable at 0.2 for one epoch, then a new cooldown.
    check_rates(
        second,
        expected_rates(16, 0.2, 8, 8, "1-sqrt"),
        start_bias=first[-1],
    )
    assert cooldown.start_step == 24


@pytest.mark.parametrize("cut_epochs", [3, 2])
def test_resume_with_set_state_continues_the_cooldown(cut_epochs):
    reference_model = helpers.bias_model(keras.optimizers.SGD(0.1))
    reference, _ = fit(
        reference_model,
        [AnytimeCooldown(decay_steps=20, start_epoch=2)],
        epochs=10,
    )
    check_rates(reference, expected_rates(36, 0.1, 16, 20, "1-sqrt"))

    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    first = AnytimeCooldown(decay_steps=20, start_epoch=2)
    before, _ = fit(model, [first], epochs=cut_epochs)
    state = json.loads(json.dumps(first.get_state()))
    # A new process: a new callback and the same command, resumed.
    resumed = AnytimeCooldown(decay_steps=20, start_epoch=2)
    resumed.set_state(state)
    after, _ = fit(model, [resumed], epochs=10, initial_epoch=cut_epochs)
    np.testing.assert_allclose(
        before + after, reference, rtol=1e-6, atol=1e-7
    )


def test_state_is_json_native():
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    cooldown = AnytimeCooldown(
        decay_steps=4, start_epoch=1, monitor="loss", patience=3
    )
    fit(model, [cooldown], epochs=2)
    state = cooldown.get_state()
    assert json.loads(json.dumps(state)) == state
    assert state["start_step"] == 8
    assert state["initial_rate"] == pytest.approx(0.1)
    assert state["cooldown_steps"] == 4


def test_verbose_messages(capsys):
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    cooldown = AnytimeCooldown(
        decay_steps=12, start_epoch=2, decay_shape="linear", verbose=1
    )
    fit(model, [cooldown], epochs=10)
    out = capsys.readouterr().out
    assert (
        "\nEpoch 3: AnytimeCooldown starting the cooldown before this epoch "
        "(start_epoch=2): learning rate 0.1 -> 0 over 12 steps (linear).\n"
    ) in out
    assert (
        "\nEpoch 4: AnytimeCooldown finished the cooldown at step 28; "
        "stopping training.\n"
    ) in out


def test_verbose_plateau_message(capsys):
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    script = Script("score", [1.0, 1.0, 1.0])
    cooldown = AnytimeCooldown(
        decay_steps=4, monitor="score", patience=1, mode="max", verbose=1
    )
    fit(model, [script, cooldown], epochs=3)
    assert (
        "\nEpoch 2: AnytimeCooldown starting the cooldown after this epoch "
        "(`score` did not improve for 1 epochs): learning rate 0.1 -> 0 "
        "over 4 steps (1-sqrt).\n"
    ) in capsys.readouterr().out


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"start_epoch": 1}, ValueError, "`decay_steps` and `decay_fraction`"),
        (
            {"decay_steps": 4, "decay_fraction": 0.1, "start_epoch": 1},
            ValueError,
            "`decay_steps` and `decay_fraction`",
        ),
        ({"decay_steps": 4}, ValueError, "needs a trigger"),
        ({"decay_steps": 0, "start_epoch": 1}, ValueError, "decay_steps=0"),
        ({"decay_steps": 2.5, "start_epoch": 1}, TypeError, "decay_steps"),
        (
            {"decay_fraction": 1.5, "start_epoch": 1},
            ValueError,
            "decay_fraction=1.5",
        ),
        (
            {"decay_steps": 4, "start_epoch": 1, "decay_shape": "exp"},
            ValueError,
            "decay_shape",
        ),
        (
            {"decay_steps": 4, "start_epoch": 1, "final_learning_rate": -1.0},
            ValueError,
            "final_learning_rate",
        ),
        ({"decay_steps": 4, "start_epoch": -1}, ValueError, "start_epoch"),
        ({"decay_steps": 4, "patience": 0}, ValueError, "patience"),
        ({"decay_steps": 4, "time_budget": 0}, ValueError, "time_budget"),
        (
            {"decay_steps": 4, "patience": 2, "mode": "up"},
            ValueError,
            "mode",
        ),
        (
            {"decay_steps": 4, "patience": 2, "min_delta": -1.0},
            ValueError,
            "min_delta",
        ),
        ({"decay_steps": 4, "patience": 2, "monitor": 3}, TypeError, "monitor"),
        (
            {"decay_steps": 4, "start_epoch": 1, "stop_when_done": 1},
            TypeError,
            "stop_when_done",
        ),
    ],
)
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(")):
        AnytimeCooldown(**kwargs)


def test_decay_fraction_needs_a_known_length():
    import tensorflow as tf

    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    x, y = helpers.zeros_data(STEPS)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    data = data.take(8).filter(lambda a, b: True)
    with pytest.raises(ValueError, match="decay_fraction"):
        model.fit(
            data,
            epochs=2,
            verbose=0,
            shuffle=False,
            callbacks=[AnytimeCooldown(decay_fraction=0.2, start_epoch=1)],
        )


class TraceCounter(keras.Sequential):
    """Counts traces of the train step (its Python body runs only when
    TensorFlow traces it)."""

    traces = 0

    def train_step(self, *args):
        self.traces += 1
        return super().train_step(*args)


@pytest.mark.parametrize("trigger", ["start_epoch", "patience"])
def test_starting_the_cooldown_traces_nothing_again(trigger):
    if keras.backend.backend() == "torch":
        pytest.skip("PyTorch runs the train step eagerly: nothing traces")
    keras.utils.set_random_seed(0)
    model = TraceCounter(
        [keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")]
    )
    model.compile(keras.optimizers.SGD(0.1), loss=helpers.mean_prediction)
    callbacks = []
    if trigger == "start_epoch":
        cooldown = AnytimeCooldown(decay_steps=300, start_epoch=1)
    else:
        cooldown = AnytimeCooldown(
            decay_steps=300, patience=1, monitor="m", mode="min"
        )
        callbacks.append(Script("m", [1.0, 2.0, 2.0, 2.0]))
    biases, _ = fit(model, [*callbacks, cooldown], epochs=4)
    assert cooldown.started
    start = cooldown.start_step
    assert start == (STEPS if trigger == "start_epoch" else 2 * STEPS)
    check_rates(biases, expected_rates(4 * STEPS, 0.1, start, 300, "1-sqrt"))
    assert model.traces == 1
