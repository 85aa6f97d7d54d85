"""The answer between the finalists: `keras_lr.range_test.refine`."""

import math

import pytest

from keras_lr.range_test.refine import between_finalists

pytestmark = pytest.mark.portable

# Eight candidates a factor 2 apart; rungs of 8, 4 and 2 candidates.
RATES = [0.01 * 2**k for k in range(8)]


def race(score, kept=(2, 3, 4, 5), finalists=(3, 4)):
    """Entries of a race whose every score is `score(rate)`: rung 0 runs
    all eight, rung 1 the candidates at `kept`, rung 2 `finalists`."""
    rows = []
    for rung, indices in enumerate((range(8), kept, finalists)):
        for i in indices:
            rows.append(
                {
                    "candidate": RATES[i],
                    "rung": rung,
                    "steps": 10 * 2**rung,
                    "score": score(RATES[i]),
                    "status": "ok",
                }
            )
    return rows


def parabola(vertex, height=0.3, width=0.5):
    return lambda rate: height + width * math.log(rate / vertex) ** 2


def test_the_vertex_of_scores_that_are_a_parabola_in_log_rate():
    # Rung 1's four scores lie exactly on a parabola in ln(rate) whose
    # lowest point is 0.1; the finalists are 0.08 and 0.16.
    rows = race(parabola(0.1))
    assert between_finalists(rows, "min") == pytest.approx(0.1, rel=1e-9)


def test_the_deepest_rung_with_three_scores_is_the_one_fitted():
    # Rung 0 says 0.05 and rung 1 says 0.12: rung 1 is fitted.
    rows = race(parabola(0.05))
    for row in rows:
        if row["rung"] >= 1:
            row["score"] = parabola(0.12)(row["candidate"])
    assert between_finalists(rows, "min") == pytest.approx(0.12, rel=1e-9)


def test_the_answer_stays_between_the_finalists():
    # The vertex 0.2 is above the finalists 0.08 and 0.16 (0.32 lost
    # rung 1 on other scores): the answer is the nearer finalist.
    rows = race(parabola(0.2))
    assert between_finalists(rows, "min") == pytest.approx(0.16, rel=1e-12)
    rows = race(parabola(0.05))
    assert between_finalists(rows, "min") == pytest.approx(0.08, rel=1e-12)


def test_a_winner_at_the_edge_of_the_candidates_is_not_moved():
    # The scores fall all the way to the highest candidate, which wins:
    # the best rate may be above it, not between the finalists.
    rows = race(parabola(2.0), kept=(4, 5, 6, 7), finalists=(6, 7))
    assert between_finalists(rows, "min") is None
    rows = race(parabola(1e-3), kept=(0, 1, 2, 3), finalists=(0, 1))
    assert between_finalists(rows, "min") is None


def test_scores_that_do_not_curve_towards_a_best_are_not_refined():
    rows = race(lambda rate: 1.0 - parabola(0.1)(rate))  # a worst point
    assert between_finalists(rows, "min") is None
    rows = race(lambda rate: 1.0 + math.log(rate))  # a line
    assert between_finalists(rows, "min") is None


def test_max_mode_is_the_same_rule_mirrored():
    rows = race(parabola(0.1))
    mirrored = [dict(r, score=-r["score"]) for r in rows]
    assert between_finalists(mirrored, "max") == pytest.approx(0.1, rel=1e-9)


def test_diverged_candidates_and_a_lone_finalist_are_handled():
    rows = race(parabola(0.1))
    # A rung-1 candidate that diverged is left out of the fit; three
    # finite scores remain.
    for row in rows:
        if row["rung"] == 1 and row["candidate"] == RATES[5]:
            row.update(score=math.inf, status="diverged")
    assert between_finalists(rows, "min") == pytest.approx(0.1, rel=1e-9)
    # One finite finalist: nothing to refine between.
    for row in rows:
        if row["rung"] == 2 and row["candidate"] == RATES[4]:
            row.update(score=math.inf, status="diverged")
    assert between_finalists(rows, "min") is None
    assert between_finalists([], "min") is None


def test_a_bad_mode_names_the_argument():
    with pytest.raises(ValueError, match=r"`mode`.*Received: mode='lowest'"):
        between_finalists(race(parabola(0.1)), "lowest")
