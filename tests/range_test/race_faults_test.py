"""The race's three faults of issue 22, each on a constructed case: what
the old mechanism did, and the race avoiding it."""

import math
import warnings

import numpy as np
import pytest

from keras_lr.range_test import race as race_module
from keras_lr.range_test.bracket import bracket
from keras_lr.range_test.bracket import read_bracket
from keras_lr.range_test.held import held_winner
from keras_lr.range_test.race import choose_learning_rate
from keras_lr.range_test.race_result import RaceResult
from keras_lr.range_test.result import RangeTestResult
from keras_lr.range_test.rungs import rung_plan
from tests.range_test.race_test import CURVATURE
from tests.range_test.race_test import quadratic_data
from tests.range_test.race_test import quadratic_model

pytestmark = pytest.mark.portable


def ema(losses, beta=0.98):
    """fastai's debiased moving average, written out here."""
    out, average = [], 0.0
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta ** (i + 1)))
    return np.array(out)


# Fault 1: a lucky first batch collapsed the bracket -------------------------


def lucky_first_batch():
    """The issue's curve: 0.64 at the first batch, about 0.87 after it,
    a fall to 0.70 from step 40 to step 70 (never as low as the first
    batch), then a blow-up."""
    losses = np.concatenate(
        [
            [0.64],
            np.full(39, 0.87),
            np.linspace(0.87, 0.70, 31)[1:],
            np.full(10, 0.70),
            np.linspace(0.70, 3.0, 21)[1:],
        ]
    )
    lrs = np.geomspace(1e-7, 10.0, losses.size)
    return RangeTestResult(lrs, losses)


def test_a_lucky_first_batch_no_longer_collapses_the_bracket():
    result = lucky_first_batch()
    lrs = result.learning_rates
    # The old top, the lowest smoothed point anywhere, is the first step:
    # the smoothed curve (computed here independently) starts at 0.64 and
    # never comes back down to it, so the old bracket was [1e-7, 1e-7].
    smoothed = ema(result.losses)
    np.testing.assert_allclose(result.smoothed_losses, smoothed, rtol=1e-12)
    assert int(np.argmin(smoothed)) == 0
    # Now: the top is where the curve turns up (the flat bottom spans steps
    # 69 ... 79; the smoothing's lag puts its lowest point near the end),
    # and the bottom where the fall starts.
    low, high = bracket(result)
    assert lrs[69] <= high <= lrs[82]
    # The fall starts between steps 40 and 50; the bracket reaches two
    # decades below its top (the sweep: 0.08 decades a step).
    read_low, read_high = read_bracket(result)["read"]
    assert lrs[40] <= read_low <= lrs[50]
    assert read_high == high
    assert low == pytest.approx(min(read_low, high / 100))
    assert read_bracket(result)["degenerate"] is False


def test_one_outlying_batch_anywhere_does_not_move_the_bracket():
    clean = lucky_first_batch().losses.copy()
    clean[0] = 0.87
    reference = bracket(
        RangeTestResult(lucky_first_batch().learning_rates, clean)
    )
    for step in (0, 1, 25, 55):
        losses = clean.copy()
        losses[step] = 0.2
        result = RangeTestResult(lucky_first_batch().learning_rates, losses)
        assert bracket(result) == reference, step


def race_on(curve, monkeypatch):
    """A whole `choose_learning_rate` on the quadratic whose range test
    gives `curve`: the result and the warnings it gave."""
    monkeypatch.setattr(
        race_module, "find_learning_rate", lambda *args, **kwargs: curve
    )
    x, y = quadratic_data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = choose_learning_rate(
            quadratic_model(),
            x,
            y,
            validation_data=(x, y),
            batch_size=4,
            budget=64,
            seed=0,
        )
    return result, caught


def narrow_fall():
    """A loss flat at 1, that falls to 0.5 at step 30 and rises from step
    34 on: the fall spans two steps of the sweep."""
    losses = np.concatenate(
        [np.ones(30), np.full(4, 0.5), np.linspace(0.5, 4.0, 7)[1:]]
    )
    lrs = np.geomspace(1e-3, 1.0, losses.size)
    return RangeTestResult(lrs, losses, config={"beta": 0.0})


def test_a_degenerate_bracket_is_widened_flagged_and_warned(monkeypatch):
    # The reading spans a step or two of the sweep (under 3x), and the
    # race would run about one rate eight times.
    curve = narrow_fall()
    lrs = curve.learning_rates
    reading = read_bracket(curve)
    low, high = reading["read"]
    assert lrs[29] <= low <= high <= lrs[34]
    assert high / low < 3
    assert reading["fell"] is True
    assert reading["degenerate"] is True
    assert reading["high"] == high
    assert reading["low"] == pytest.approx(high / 100)
    result, caught = race_on(curve, monkeypatch)
    assert result.degenerate_bracket is True
    assert result.bracket == pytest.approx((high / 100, high))
    assert min(result.candidates) == pytest.approx(high / 100)
    (message,) = [
        str(w.message) for w in caught if "degenerate" in str(w.message)
    ]
    assert message.startswith(
        "The range test's curve gave a degenerate bracket ["
    )
    assert message in result.notices
    assert result.to_dict()["degenerate_bracket"] is True
    assert RaceResult.from_dict(result.to_dict()).degenerate_bracket is True


def ftrl_like(start_lr=1e-7, end_lr=10.0):
    """A curve that never falls: flat at 2.30 (chance on ten classes),
    then up from the 20th step, and the sweep stopped on divergence at
    step 40 (what Keras' `Ftrl` gives: its rate scales the weights it
    computes from every gradient so far)."""
    lrs = np.geomspace(start_lr, end_lr, 100)[:40]
    losses = np.concatenate(
        [np.full(20, 2.30), 2.30 * np.geomspace(1.05, 30.0, 20)]
    )
    config = {"start_lr": start_lr, "end_lr": end_lr, "beta": 0.98}
    return RangeTestResult(lrs, losses, config=config, stop_reason="diverged")


def test_a_curve_that_never_falls_races_the_whole_swept_range(monkeypatch):
    curve = ftrl_like()
    reading = read_bracket(curve)
    # The old reading raced from the first rate up to where the smoothed
    # loss rose 2% above its start, a few steps past the 20th (about
    # 1e-5): nowhere near a rate that trains.
    assert reading["fell"] is False
    assert reading["degenerate"] is True
    assert (reading["low"], reading["high"]) == (1e-7, 10.0)
    assert bracket(curve) == (1e-7, 10.0)
    result, caught = race_on(curve, monkeypatch)
    assert result.bracket == pytest.approx((1e-7, 10.0))
    rates = np.sort(result.candidates)
    assert rates[0] == pytest.approx(1e-7) and rates[-1] == pytest.approx(10)
    # Log-spaced over the eight decades: no gap wider than the even
    # spacing of eight candidates (a reading put in place of one of them
    # can only narrow a gap on one side and widen the other by as much).
    gaps = np.diff(np.log10(rates))
    assert gaps.max() <= 2 * 8 / 7 + 1e-9
    (message,) = [
        str(w.message) for w in caught if "never fell" in str(w.message)
    ]
    assert message.startswith("The range test's loss never fell")
    assert "[1e-07, 10]" in message
    assert message in result.notices
    assert result.degenerate_bracket is True
    # The quadratic's curvature makes rates above 2 / curvature diverge:
    # the race's answer is a rate that trains (checked by the race's own
    # held-out score against the start).
    assert result.learning_rate < 2 / CURVATURE
    final = [
        e for e in result.entries if e["candidate"] == result.learning_rate
    ][-1]
    assert final["score"] < result.initial_score


# Fault 2: the first rung was too short ---------------------------------------


def test_the_first_rung_is_a_quarter_of_the_finalists_length():
    # The race: twelve candidates, reduction 2, 20 epochs of 33
    # steps. Successive halving to the last candidate ran four rungs, the
    # first an eighth of the finalists' length: 20 steps.
    budget = 660
    old_units = 12 * 1 + 6 * 1 + 3 * 2 + 2 * 4
    assert budget // old_units == 20
    for candidates in range(2, 17):
        for reduction in (2, 3):
            plan = rung_plan(candidates, reduction, budget)
            steps = [p["steps"] for p in plan]
            assert steps[0] * reduction ** (len(plan) - 1) == steps[-1]
            assert len(plan) <= 3
            assert plan[0]["candidates"] == candidates
            spent = sum(
                p["candidates"] * (p["steps"] - (steps[i - 1] if i else 0))
                for i, p in enumerate(plan)
            )
            assert spent <= budget
    # Twelve candidates: 12, 3, 2 to 34, 68, 136 steps (19 units of 34).
    assert rung_plan(12, 2, budget) == [
        {"candidates": 12, "steps": 34},
        {"candidates": 3, "steps": 68},
        {"candidates": 2, "steps": 136},
    ]
    # The default eight: the same finalists' length as before (a quarter
    # of the budget), and a first rung twice as long as the old one.
    plan = rung_plan(8, 2, budget)
    assert plan[-1]["steps"] == 4 * plan[0]["steps"] == 164
    assert plan[0]["steps"] > 2 * 20 - 1


# Fault 3: a finalist that collapsed still won, silently --------------------


def entries(histories):
    rows = []
    for rate, scores in histories.items():
        for rung, score in enumerate(scores):
            rows.append(
                {
                    "candidate": rate,
                    "rung": rung,
                    "steps": 10 * 2**rung,
                    "score": score,
                    "status": "ok",
                }
            )
    return rows


def test_a_collapsed_finalist_falls_back_to_a_candidate_that_held():
    # The race: the winner went 0.52 after rung 3 and 1.96 after
    # rung 4 (the untrained model scores 2.43); the other finalist was
    # worse still. A third candidate stopped at rung 3 with 0.60, having
    # only improved.
    rows = entries(
        {
            0.3: [1.2, 0.8, 0.52, 1.96],
            0.5: [1.0, 0.7, 0.55, 2.20],
            0.1: [1.5, 0.9, 0.60],
            0.05: [1.9, 1.1],
        }
    )
    ranked = min((r for r in rows if r["rung"] == 3), key=lambda r: r["score"])
    assert ranked["candidate"] == 0.3  # what the old race returned
    answer = held_winner(rows, 2.43, "min")
    assert answer == {
        "learning_rate": 0.1,
        "ranked": 0.3,
        "held": True,
        "fallback": True,
    }
    # In "max" mode (an accuracy) the same rule, mirrored.
    flipped = [dict(r, score=-r["score"]) for r in rows]
    assert held_winner(flipped, -2.43, "max") == answer


def test_a_winner_that_held_stays():
    rows = entries({0.3: [1.2, 0.8, 0.5], 0.1: [1.5, 0.9, 0.6]})
    assert held_winner(rows, 2.43, "min")["learning_rate"] == 0.3
    assert held_winner(rows, 2.43, "min")["fallback"] is False


def test_a_bump_recovered_from_is_not_a_collapse():
    # 0.3 went up at rung 1 and ended below every earlier score: it held.
    # 0.1 ended at its best too. 0.5 ended above its rung-0 score.
    rows = entries(
        {0.3: [1.0, 1.2, 0.5], 0.1: [1.5, 0.9, 0.6], 0.5: [0.9, 0.95]}
    )
    answer = held_winner(rows, 2.43, "min")
    assert answer["learning_rate"] == 0.3 and answer["held"] is True
    # Both finalists ended above an earlier score: neither held.
    rows = entries({0.3: [1.0, 1.2, 1.1], 0.1: [1.5, 0.9, 1.3]})
    answer = held_winner(rows, 2.43, "min")
    assert answer == {
        "learning_rate": 0.3,
        "ranked": 0.3,
        "held": False,
        "fallback": False,
    }


def test_no_candidate_held():
    rows = entries({0.3: [2.5, 2.6], 0.1: [2.44, 2.45], 0.05: [2.9]})
    assert held_winner(rows, 2.43, "min") == {
        "learning_rate": 0.1,
        "ranked": 0.1,
        "held": False,
        "fallback": False,
    }


def test_a_candidate_cut_at_the_first_rung_is_no_fall_back():
    # A bank race (digits, Muon): every candidate that went on past the
    # first rung ended above an earlier score, the winner by 17%
    # (0.2356 -> 0.2766). The candidates cut at the first rung have one
    # score each, below the 2.357 before the race, so they "held" without
    # ever being tested; the old rule fell back to 0.614 (1.006, four
    # times the winner's loss), which trained to 17x the best loss.
    rows = entries(
        {
            0.0061: [1.991],
            0.0118: [1.702],
            0.026: [1.057],
            0.0442: [0.532, 0.2356, 0.2766],
            0.0853: [0.2355, 0.2795, 0.4698],
            0.1646: [0.2842, 0.7317],
            0.242: [0.4332, 0.7701],
            0.614: [1.006],
        }
    )
    assert held_winner(rows, 2.357, "min") == {
        "learning_rate": 0.0442,
        "ranked": 0.0442,
        "held": False,
        "fallback": False,
    }
    # A candidate that went on and held is still a fall-back.
    rows = entries({0.3: [1.0, 0.5, 0.6], 0.1: [1.2, 0.7], 0.9: [0.8]})
    answer = held_winner(rows, 2.4, "min")
    assert answer["learning_rate"] == 0.1 and answer["fallback"] is True


def race_validated_off_target(monkeypatch, rates, shrink):
    """The quadratic raced over `rates`, scored on targets `shrink` times
    the training targets: training moves the weights from 0 towards w_star,
    the held-out loss is lowest at `shrink * w_star` and rises past it."""
    x, y = quadratic_data()
    monkeypatch.setattr(
        race_module, "candidate_rates", lambda result, count: np.array(rates)
    )
    return choose_learning_rate(
        quadratic_model(),
        x,
        y,
        validation_data=(x, shrink * y),
        batch_size=4,
        budget=64,
        num_steps=20,
        seed=0,
        verbose=1,
    )


def test_a_race_whose_winner_overshoots_falls_back(monkeypatch, capsys):
    # Full-batch gradient descent: after t steps at rate r the weights are
    # c w_star with c = 1 - (1 - r L)^t, and the held-out loss is
    # (c - 0.7)^2 |w_star|^2 / 4. Rungs of 5, 10, 20 steps: 0.2 leads
    # rung 1 (c = 0.65) and wins rung 2 against 0.4, but its loss rose
    # (c = 0.88); 0.1 stopped at rung 1 having only improved.
    rates = [0.02, 0.05, 0.1, 0.2, 0.4]
    with pytest.warns(UserWarning, match="falls back to 0.1") as caught:
        result = race_validated_off_target(monkeypatch, rates, 0.7)

    def held_out(rate, steps):
        c = 1 - (1 - rate * CURVATURE) ** steps
        return (c - 0.7) ** 2 * float(np.sum(quadratic_data()[1] ** 2)) / 4

    for entry in result.entries:
        expected = held_out(entry["candidate"], entry["steps"])
        assert entry["score"] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert [e["steps"] for e in result.rung_entries(2)] == [20, 20]
    assert result.fallback_from == 0.2
    assert result.learning_rate == 0.1
    assert result.held is True
    # (On PyTorch, Keras' `convert_to_numpy` also records NumPy 2's
    # DeprecationWarnings here.)
    (message,) = [str(w.message) for w in caught if w.category is UserWarning]
    assert message.startswith(
        "The race's ranked winner 0.2 got worse than its own earlier "
        "held-out val_loss"
    )
    assert message in result.notices
    assert "warning: The race's ranked winner 0.2" in capsys.readouterr().out
    assert "fell back from 0.2" in result.summary()
    loaded = RaceResult.from_dict(result.to_dict())
    assert loaded.fallback_from == 0.2 and loaded.notices == result.notices


def test_a_race_where_no_candidate_held_says_so(monkeypatch):
    # Every rate above 2 / L: the loss grows from the first step.
    rates = [4.4, 4.6, 4.8]
    assert min(rates) > 2 / CURVATURE
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = race_validated_off_target(monkeypatch, rates, 1.0)
    messages = [str(w.message) for w in caught]
    assert any("no candidate's score held" in m for m in messages)
    assert result.held is False and result.fallback_from is None
    assert all(
        e["score"] > result.initial_score
        for e in result.entries
        if math.isfinite(e["score"])
    )
    assert result.to_dict()["held"] is False
