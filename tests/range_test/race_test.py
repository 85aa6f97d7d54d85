"""`choose_learning_rate`: the range test, then a race of candidates."""

import json
import math
import warnings

import keras
import numpy as np
import pytest

import keras_lr
from keras_lr.range_test import race as race_module
from keras_lr.range_test.bracket import bracket
from keras_lr.range_test.bracket import candidate_rates
from keras_lr.range_test.bracket import read_bracket
from keras_lr.range_test.race import choose_learning_rate
from keras_lr.range_test.race_result import RaceResult
from keras_lr.range_test.race_runner import RaceRunner
from keras_lr.range_test.refine import between_finalists
from keras_lr.range_test.result import RangeTestResult
from keras_lr.range_test.rungs import rung_plan

pytestmark = pytest.mark.portable

# The quadratic: 4 samples x = s * e_i, targets x . w_star, MSE. The loss is
# (s^2 / 4) * |w - w_star|^2, its Hessian (s^2 / 2) I, so L = s^2 / 2 in
# every direction and full-batch gradient descent at rate 1 / L lands on
# w_star in one step; any other rate stays a factor |1 - lr L|^t away.
SCALE = 1.0
CURVATURE = SCALE**2 / 2
W_STAR = np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")


def quadratic_data():
    x = (SCALE * np.eye(4)).astype("float32")
    return x, x @ W_STAR


def quadratic_model(**compile_kwargs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.01), "mse", **compile_kwargs)
    model.optimizer.build(model.trainable_variables)
    return model


def digits_model(optimizer=None, dropout=0.0, **compile_kwargs):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((16,)), keras.layers.Dense(16, activation="relu")]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    model = keras.Sequential(layers + [keras.layers.Dense(3)])
    model.compile(
        optimizer or keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **compile_kwargs,
    )
    model.optimizer.build(model.trainable_variables)
    return model


def blobs(n=240, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 16)) * 2
    y = rng.integers(0, 3, size=n).astype("int32")
    x = (centers[y] + rng.normal(size=(n, 16))).astype("float32")
    return x, y


def state_of(model):
    """Every model and optimizer variable (a float rate included), and the
    rate controller's multiplier (1.0 before one is installed)."""
    values = [np.array(v.numpy()) for v in model.variables]
    # Keras' own (on JAX the rate controller's variables, carried in the
    # train state with the optimizer's, follow them once it is installed).
    carried = getattr(model.optimizer, "_keras_lr_carried", set())
    values += [
        np.array(v.numpy())
        for v in model.optimizer.variables
        if id(v) not in carried
    ]
    controller = keras_lr.control.installed_controller(model.optimizer)
    values.append(1.0 if controller is None else controller.multiplier)
    return values


def assert_bitwise(before, after):
    assert len(before) == len(after)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


# The plan ------------------------------------------------------------------


def test_rung_plan_halves_candidates_and_doubles_steps():
    plan = rung_plan(8, 2, 160)
    assert plan == [
        {"candidates": 8, "steps": 10},
        {"candidates": 4, "steps": 20},
        {"candidates": 2, "steps": 40},
    ]
    # Spent: 8 * 10 + 4 * 10 + 2 * 20 = 160.
    spent = sum(
        p["candidates"] * (p["steps"] - (plan[i - 1]["steps"] if i else 0))
        for i, p in enumerate(plan)
    )
    assert spent == 160


def test_rung_plan_three_way_and_steps_per_execution():
    # 9 * 1 + 3 * (3 - 1) = 15 units of 100 // 15 = 6 steps.
    assert rung_plan(9, 3, 100) == [
        {"candidates": 9, "steps": 6},
        {"candidates": 3, "steps": 18},
    ]
    # steps_per_execution=4: every rung a multiple of 4.
    plan = rung_plan(8, 2, 200, multiple=4)
    assert [p["steps"] for p in plan] == [12, 24, 48]


def test_rung_plan_budget_too_small_names_the_argument():
    with pytest.raises(ValueError, match=r"`budget`.*at least 16.*budget=15"):
        rung_plan(8, 2, 15)


# The bracket ---------------------------------------------------------------


def curve(losses, start=1e-4, end=10.0):
    lrs = np.geomspace(start, end, len(losses))
    return RangeTestResult(
        lrs, losses, config={"beta": 0.0}, smoothed_losses=losses
    )


def test_bracket_from_first_fall_to_the_turn():
    # Flat at 2, falls from step 30 to step 70 (to 0.5), blows up after 80.
    losses = np.concatenate(
        [
            np.full(30, 2.0),
            np.linspace(2.0, 0.5, 41)[1:],
            np.full(10, 0.5),
            np.linspace(0.5, 5.0, 21)[1:],
        ]
    )
    result = curve(losses)
    lrs = result.learning_rates
    low, high = bracket(result)
    # A tenth of the fall (0.15 below 2.0) is reached 4 steps into it; the
    # bracket reaches two decades below its top, further down.
    assert low == pytest.approx(high / 100)
    # The loss turns up where it is lowest (first reached at step 69).
    assert int(np.argmin(losses)) == 69
    assert high == pytest.approx(lrs[69])
    rates = candidate_rates(result, 8)
    assert rates.size == 8 and rates[0] == low and rates[-1] == high
    assert result.suggestion("valley") in rates


def test_bracket_of_a_curve_that_never_falls_spans_the_sweep():
    # Flat: no rate made progress, so no part of the sweep is ruled in.
    result = curve(np.full(50, 2.3))
    assert bracket(result) == (
        result.learning_rates[0],
        result.learning_rates[-1],
    )
    # A flat start and then a rise: the same, and the range the test was
    # asked for (its config) when it stopped early on divergence.
    losses = np.concatenate([np.full(30, 2.3), np.linspace(2.3, 9.0, 11)])
    early = RangeTestResult(
        np.geomspace(1e-6, 1.0, 60)[:41],
        losses,
        config={"start_lr": 1e-6, "end_lr": 1.0},
        stop_reason="diverged",
    )
    assert bracket(early) == (1e-6, 1.0)
    assert read_bracket(early)["fell"] is False


def test_bracket_spans_at_most_three_decades():
    # A long slow drift down from 1e-7: the bracket starts 1000x below
    # the lowest point, not at the drift's start.
    losses = np.concatenate(
        [np.linspace(2.3, 1.6, 80), np.linspace(1.6, 0.5, 15)[1:]]
    )
    losses = np.concatenate([losses, np.linspace(0.5, 5, 8)[1:]])
    result = curve(losses, start=1e-7)
    low, high = bracket(result)
    # The lowest point is step 93, the tip of a sharp V; the running
    # median (5 steps) flattens the tip over steps 91 ... 93.
    lrs = result.learning_rates
    assert lrs[91] <= high <= lrs[93]
    assert low == pytest.approx(high / 1000)


# The race ------------------------------------------------------------------


def test_race_on_a_quadratic_picks_one_over_l_within_one_grid_step():
    x, y = quadratic_data()
    model = quadratic_model()
    before = state_of(model)
    result = choose_learning_rate(
        model,
        x,
        y,
        validation_data=(x, y),
        batch_size=4,
        budget=64,
        start_lr=1e-3,
        end_lr=100.0,
        num_steps=60,
        seed=0,
    )
    rates = np.asarray(result.candidates)
    step = np.max(np.diff(np.log(rates)))
    best = 1.0 / CURVATURE
    assert abs(math.log(result.learning_rate / best)) <= step + 1e-9
    # Rates past 2/L, where gradient descent diverges, ended above the
    # starting loss (|w_star|^2 / 4) and went no further.
    assert result.initial_score == pytest.approx(np.sum(W_STAR**2) / 4)
    unstable = [e for e in result.entries if e["candidate"] > 2 / CURVATURE]
    assert unstable and all(e["rung"] == 0 for e in unstable)
    assert all(e["score"] > result.initial_score for e in unstable)
    assert result.range_test.stop_reason in ("diverged", "non_finite")
    assert_bitwise(before, state_of(model))


def race_over(monkeypatch, model, rates):
    """The quadratic raced over exactly `rates` (the bracket's candidates
    replaced), with the held-out data the training data."""
    x, y = quadratic_data()
    monkeypatch.setattr(
        race_module,
        "candidate_rates",
        lambda result, count: np.array(rates),
    )
    return choose_learning_rate(
        model,
        x,
        y,
        validation_data=(x, y),
        batch_size=4,
        budget=64,
        num_steps=20,
        seed=0,
    )


@pytest.mark.parametrize(
    "rates, edge, side",
    [
        ([0.01, 0.02, 0.04, 0.08], "top", "above"),
        ([3.0, 3.5, 3.9], "bottom", "below"),
    ],
)
def test_a_winner_at_the_edge_of_the_candidates_warns(
    monkeypatch, rates, edge, side
):
    # All candidates below 1/L = 2 (the highest trains fastest), or all
    # between 1/L and 2/L (the lowest does): the best rate is outside.
    with pytest.warns(UserWarning) as caught:
        result = race_over(monkeypatch, quadratic_model(), rates)
    messages = [str(w.message) for w in caught]
    assert result.at_edge == edge
    assert result.learning_rate == (rates[-1] if edge == "top" else rates[0])
    (message,) = [m for m in messages if "of the bracket" in m]
    assert message.startswith(
        f"The race's winner {result.learning_rate:.3g} is the {edge} "
        "candidate of the bracket ["
    )
    assert f"the best rate may lie {side} it" in message
    assert result.summary().endswith(f"; the winner is the {edge} candidate")


def test_a_winner_inside_the_candidates_does_not_warn(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = race_over(
            monkeypatch, quadratic_model(), [0.5, 1.0, 2.0, 3.0, 3.5]
        )
    assert result.winner == 2.0
    assert result.at_edge is None
    # The answer is refined between the finalists, and says so.
    finalists = [e["candidate"] for e in result.rung_entries(result.rungs - 1)]
    assert result.refined_from == 2.0
    assert min(finalists) <= result.learning_rate <= max(finalists)
    assert result.learning_rate == between_finalists(result.entries, "min")
    assert "refined between the finalists to" in result.summary()


def test_a_candidate_that_blows_up_to_nan_is_out_and_the_model_restored(
    monkeypatch,
):
    # Rates far past 2/L: the quadratic's loss overflows to inf and the
    # weights to NaN within a few steps.
    model = quadratic_model()
    before = state_of(model)
    result = race_over(monkeypatch, model, [0.5, 2.0, 1e6, 1e9])
    lost = [e for e in result.entries if e["status"] == "diverged"]
    assert {e["candidate"] for e in lost} == {1e6, 1e9}
    assert all(e["score"] == math.inf for e in lost), result.entries
    assert all(e["rung"] == 0 for e in lost), result.entries
    assert result.learning_rate == 2.0
    assert_bitwise(before, state_of(model))
    assert all(np.isfinite(v).all() for v in state_of(model))


def test_same_seed_same_race():
    x, y = blobs()
    runs = []
    for _ in range(2):
        model = digits_model()
        runs.append(
            choose_learning_rate(
                model, x, y, batch_size=16, budget=96, num_steps=40, seed=3
            ).to_dict()
        )
    for run in runs:
        for key in ("range_test_seconds", "race_seconds"):
            run["cost"].pop(key)
    assert runs[0] == runs[1]


def test_result_records_the_race_and_round_trips(tmp_path):
    x, y = blobs()
    model = digits_model(dropout=0.2)
    before = state_of(model)
    result = choose_learning_rate(
        model, x, y, batch_size=16, budget=96, num_steps=40, seed=0
    )
    assert_bitwise(before, state_of(model))
    plan = rung_plan(8, 2, 96)
    # Every rung: its candidates, each trained to the rung's steps.
    for rung, step in enumerate(plan):
        rows = result.rung_entries(rung)
        assert len(rows) == min(step["candidates"], len(result.candidates))
        assert {r["steps"] for r in rows} == {step["steps"]}
    # Rung 1 holds the best half of rung 0.
    first = sorted(result.rung_entries(0), key=lambda r: r["score"])
    kept = {r["candidate"] for r in result.rung_entries(1)}
    assert kept == {r["candidate"] for r in first[: len(kept)]}
    last = result.rung_entries(result.rungs - 1)
    assert result.winner == min(last, key=lambda r: r["score"])["candidate"]
    if result.refined_from is None:
        assert result.learning_rate == result.winner
    else:
        assert result.refined_from == result.winner
        span = [r["candidate"] for r in last]
        assert min(span) <= result.learning_rate <= max(span)
    assert result.cost["race_steps"] == sum(
        max(e["steps"] for e in result.entries if e["candidate"] == c)
        for c in result.candidates
    )
    assert result.cost["range_test_steps"] == 40
    path = tmp_path / "race.json"
    result.save_json(path)
    loaded = RaceResult.from_dict(json.loads(path.read_text()))
    assert loaded.learning_rate == result.learning_rate
    assert loaded.refined_from == result.refined_from
    assert loaded.entries == result.entries
    figure = result.plot(tmp_path / "race.png")
    assert (tmp_path / "race.png").stat().st_size > 0
    assert len(figure.axes) == 2


def test_scores_are_the_held_out_loss_of_the_candidate():
    # Rung 0's score of a candidate equals the held-out loss of the same
    # training done by hand: same batches, same rate, same start.
    x, y = blobs()
    x_val, y_val = blobs(60, seed=1)
    model = digits_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = choose_learning_rate(
            model,
            x,
            y,
            validation_data=(x_val, y_val),
            batch_size=16,
            budget=64,
            num_steps=40,
            seed=5,
        )
    # A warning exactly when the winner is at an edge of the candidates.
    edge = [w for w in caught if "of the bracket" in str(w.message)]
    assert len(edge) == (result.at_edge is not None)
    entry = result.rung_entries(0)[2]
    # The race's stream: fresh seeded permutations of the samples, end to
    # end.
    rng = np.random.default_rng([5, 1])
    stream = np.concatenate([rng.permutation(len(x)) for _ in range(4)])
    indices = stream[: entry["steps"] * 16]
    fresh = digits_model(keras.optimizers.Adam(entry["candidate"]))
    fresh.fit(x[indices], y[indices], batch_size=16, shuffle=False, verbose=0)
    expected = fresh.evaluate(x_val, y_val, batch_size=1024, verbose=0)
    assert entry["score"] == pytest.approx(expected, rel=1e-5)


def test_race_under_a_schedule_picks_a_multiplier():
    x, y = blobs()
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, 500)
    model = digits_model(keras.optimizers.Adam(schedule))
    result = choose_learning_rate(
        model, x, y, batch_size=16, budget=96, num_steps=40, seed=0
    )
    # The rate after the race is the schedule's again.
    controller = keras_lr.control.rate_controller(model)
    assert controller.current() == pytest.approx(float(schedule(0)))
    # The winner's peak rate over the race is multiplier x the schedule's.
    assert result.multiplier == pytest.approx(
        result.learning_rate / float(schedule(0)), rel=1e-6
    )
    rate = result.apply(model)
    assert rate == pytest.approx(result.learning_rate, rel=1e-6)
    assert controller.multiplier == pytest.approx(result.multiplier)


@pytest.mark.parametrize(
    "compile_kwargs",
    [{"steps_per_execution": 4}, {"jit_compile": True}],
    ids=["steps_per_execution", "jit_compile"],
)
def test_race_same_answer_with_compile_options(compile_kwargs):
    x, y = blobs()
    results = []
    for kwargs in ({}, compile_kwargs):
        model = digits_model(**kwargs)
        before = state_of(model)
        results.append(
            choose_learning_rate(
                model, x, y, batch_size=16, budget=128, num_steps=40, seed=0
            )
        )
        assert_bitwise(before, state_of(model))
    plain, other = results
    assert other.learning_rate == pytest.approx(plain.learning_rate, rel=1e-5)
    for a, b in zip(plain.entries, other.entries):
        assert a["candidate"] == pytest.approx(b["candidate"], rel=1e-5)
        assert a["score"] == pytest.approx(b["score"], rel=1e-3)


def test_race_under_mirrored_strategy(two_cpu_strategy):
    # The same race as on one device: each replica trains on half of each
    # batch, and the gradients are summed (up to rounding, the same step).
    x, y = blobs()
    plain = choose_learning_rate(
        digits_model(), x, y, batch_size=16, budget=96, num_steps=40, seed=0
    )
    with two_cpu_strategy.scope():
        model = digits_model()
    before = state_of(model)
    result = choose_learning_rate(
        model, x, y, batch_size=16, budget=96, num_steps=40, seed=0
    )
    assert_bitwise(before, state_of(model))
    assert result.learning_rate == pytest.approx(plain.learning_rate, rel=1e-5)
    assert len(result.entries) == len(plain.entries)
    for a, b in zip(plain.entries, result.entries):
        assert a["candidate"] == pytest.approx(b["candidate"], rel=1e-5)
        assert (a["rung"], a["steps"]) == (b["rung"], b["steps"])
        assert a["score"] == pytest.approx(b["score"], rel=1e-3)


def test_restored_bitwise_after_an_interrupt(monkeypatch):
    x, y = blobs()
    model = digits_model(dropout=0.2)
    before = state_of(model)
    calls = {"n": 0}
    score = RaceRunner.score

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return score(self)

    monkeypatch.setattr(RaceRunner, "score", interrupted)
    with pytest.raises(KeyboardInterrupt):
        choose_learning_rate(
            model, x, y, batch_size=16, budget=96, num_steps=40, seed=0
        )
    assert_bitwise(before, state_of(model))
    assert not model.stop_training


def test_verbose_prints_a_line_per_rung(capsys):
    x, y = blobs()
    model = digits_model()
    result = choose_learning_rate(
        model, x, y, batch_size=16, budget=96, num_steps=40, seed=0, verbose=1
    )
    out = capsys.readouterr().out
    assert out.count("race rung ") == len(rung_plan(8, 2, 96))
    # The sweep's last step is at the edge of divergence: JAX's float32
    # stops it one step early.
    steps = result.cost["range_test_steps"]
    assert steps == len(result.range_test.losses)
    if keras.backend.backend() == "tensorflow":
        assert steps == 40
    assert f"range test: {steps} steps" in out
    assert f"cost {steps} range-test + " in out


# Bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"candidates": 1}, r"`candidates`.*>= 2.*candidates=1"),
        ({"reduction": 1}, r"`reduction`.*>= 2.*reduction=1"),
        ({"budget": 10}, r"`budget` is too small.*budget=10"),
        ({"validation_split": 0.001}, r"`validation_split`.*no samples"),
        ({"validation_split": 1.5}, r"`validation_split`"),
        ({"monitor": "val_accuracy"}, r"`monitor`.*available.*val_loss"),
        ({"validation_data": [1]}, r"`validation_data` must be a tuple"),
    ],
)
def test_bad_input_names_the_argument(kwargs, message):
    x, y = blobs(100)
    model = digits_model()
    before = state_of(model)
    arguments = dict(batch_size=16, budget=64, num_steps=20, seed=0)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        choose_learning_rate(model, x, y, **arguments)
    assert_bitwise(before, state_of(model))


def test_dataset_input_needs_validation_data_and_budget():
    import tensorflow as tf

    x, y = blobs()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model = digits_model()
    with pytest.raises(ValueError, match=r"`validation_data` is required"):
        choose_learning_rate(model, dataset)
    with pytest.raises(ValueError, match=r"`budget` is required"):
        choose_learning_rate(model, dataset, validation_data=(x, y))
    result = choose_learning_rate(
        model,
        dataset,
        validation_data=dataset,
        budget=64,
        num_steps=20,
        seed=0,
    )
    # A candidate's score is the held-out loss of the same training done
    # by hand: the dataset's first `steps` batches (repeated as needed),
    # at the candidate's rate, from the model's start; in a later rung,
    # from where its last share ended.
    first = result.rung_entries(0)[2]
    last = result.rung_entries(result.rungs - 1)[0]
    assert result.rungs > 1 and last["steps"] > int(dataset.cardinality())
    for entry in (first, last):
        fresh = digits_model(keras.optimizers.Adam(entry["candidate"]))
        fresh.fit(
            dataset.repeat().take(entry["steps"]), shuffle=False, verbose=0
        )
        expected = fresh.evaluate(dataset, verbose=0)
        assert entry["score"] == pytest.approx(expected, rel=1e-5)
