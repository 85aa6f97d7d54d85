"""Suggestions and smoothing on hand-built curves, against closed forms."""

import json
import math
import os

import numpy as np
import pytest

import keras_lr
from keras_lr.range_test import suggestions

pytestmark = pytest.mark.portable

LRS = np.logspace(-5, 0, 51)  # log10 steps of exactly 0.1
LOG = np.log10(LRS)


def reference_smooth(losses, beta):
    # Closed form of the debiased EMA: a normalized geometric weighting.
    out = []
    for i in range(len(losses)):
        weights = [(1 - beta) * beta ** (i - j) for j in range(i + 1)]
        total = sum(w * x for w, x in zip(weights, losses[: i + 1]))
        out.append(total / (1 - beta ** (i + 1)))
    return np.array(out)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.98])
def test_smooth_losses_matches_closed_form(beta):
    losses = np.random.default_rng(0).uniform(0.5, 3.0, size=40)
    np.testing.assert_allclose(
        suggestions.smooth_losses(losses, beta),
        reference_smooth(list(losses), beta),
        rtol=1e-12,
    )


def test_smooth_losses_first_value_is_first_loss():
    assert suggestions.smooth_losses([2.5, 1.0], 0.98)[0] == pytest.approx(2.5)


def test_steepest_finds_the_inflection_of_a_tanh_drop():
    losses = 2.0 - np.tanh(2.0 * (LOG + 2.5))  # steepest at 10**-2.5
    assert suggestions.steepest(LRS, losses) == pytest.approx(10**-2.5)


def test_steepest_ignores_falls_after_the_lowest_point():
    # Falls gently to a minimum at 10**-1, blows up, then crashes down.
    losses = np.concatenate(
        [np.linspace(3.0, 1.0, 41), [5.0, 9.0, 20.0, 40.0, 60.0, 80.0]]
    )
    losses = np.concatenate([losses, [50.0, 10.0, 3.0, 2.0]])
    lr = suggestions.steepest(LRS, losses)
    assert LRS[5] <= lr <= LRS[40]


def test_minimum_is_the_argmin_over_ten():
    losses = (LOG + 2.0) ** 2 + 1.0
    assert suggestions.minimum(LRS, losses) == pytest.approx(1e-3)


def test_valley_is_the_middle_of_the_longest_fall():
    # Flat for 10 steps, falling for 20, rising for 21.
    losses = np.concatenate(
        [np.full(10, 5.0), np.linspace(4.9, 1.0, 20), np.linspace(1.5, 9, 21)]
    )
    # Every step from index 9 (last flat point) to 29 falls.
    assert suggestions.longest_falling_stretch(losses) == (9, 29)
    assert suggestions.valley(LRS, losses) == pytest.approx(LRS[19])


def test_valley_ignores_a_longer_flat_noisy_start():
    # A noisy plateau has many small falls but no long run of them.
    noise = 0.01 * np.sin(np.arange(25) * 2.1)
    losses = np.concatenate(
        [2.3 + noise, np.linspace(2.29, 1.0, 15), np.linspace(1.2, 9, 11)]
    )
    assert suggestions.longest_falling_stretch(losses) == (24, 39)
    assert suggestions.valley(LRS, losses) == pytest.approx(LRS[31])


def test_valley_picks_the_longer_of_two_falls():
    losses = np.concatenate(
        [
            np.linspace(5.0, 4.0, 6),  # short fall, 0..5
            np.linspace(9.0, 1.0, 30),  # long fall, 6..35
            np.linspace(2.0, 9.0, 15),
        ]
    )
    assert suggestions.longest_falling_stretch(losses) == (6, 35)
    assert suggestions.valley(LRS, losses) == pytest.approx(LRS[20])


def test_valley_of_equal_runs_prefers_the_deeper_fall():
    losses = np.array([5.0, 4.9, 4.8, 6.0, 3.0, 1.0, 7.0])
    assert suggestions.longest_falling_stretch(losses) == (3, 5)


def test_valley_needs_a_fall():
    with pytest.raises(ValueError, match="never falls"):
        suggestions.valley(LRS, np.linspace(1.0, 2.0, LRS.size))


def test_non_finite_tail_is_ignored():
    losses = (LOG + 2.0) ** 2 + 1.0
    cut = losses.copy()
    cut[40:] = np.nan
    assert suggestions.minimum(LRS, cut) == pytest.approx(1e-3)
    assert np.isfinite(suggestions.valley(LRS, cut))


def test_too_few_points_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 3 finite points"):
        suggestions.valley([1e-3, 1e-2, 1e-1], [1.0, np.nan, np.nan])


def test_unknown_method_names_the_argument():
    result = keras_lr.RangeTestResult(LRS, (LOG + 2.0) ** 2)
    with pytest.raises(ValueError, match="Argument `method` must be one of"):
        result.suggestion("fastest")


def test_result_suggestions_use_the_smoothed_curve():
    losses = (LOG + 2.0) ** 2 + 1.0
    result = keras_lr.RangeTestResult(LRS, losses, config={"beta": 0.0})
    np.testing.assert_array_equal(result.smoothed_losses, losses)
    assert result.suggestion("minimum") == pytest.approx(1e-3)
    assert result.suggestion() == suggestions.valley(LRS, losses)


def test_repeats_report_geometric_mean_min_and_max():
    curves = []
    for centre in (-2.0, -3.0, -1.0):
        curves.append((LRS, (LOG - centre) ** 2 + 1.0))
    result = keras_lr.RangeTestResult.from_runs(
        curves, ["diverged"] * 3, config={"beta": 0.0}
    )
    spread = result.suggestion_spread("minimum")
    assert spread["values"] == pytest.approx([1e-3, 1e-4, 1e-2])
    assert spread["min"] == pytest.approx(1e-4)
    assert spread["max"] == pytest.approx(1e-2)
    assert spread["geometric_mean"] == pytest.approx(1e-3)
    assert result.repeats == 3


def test_noise_warning_on_a_flat_noisy_curve():
    losses = 2.0 + np.random.default_rng(1).normal(0, 0.3, size=LRS.size)
    result = keras_lr.RangeTestResult(LRS, losses, stop_reason="diverged")
    assert any("too noisy" in m for m in result.warnings())


def test_no_warning_on_a_clean_curve():
    losses = 2.0 - np.tanh(2.0 * (LOG + 2.5)) + 0.001 * np.sin(LOG * 50)
    result = keras_lr.RangeTestResult(
        LRS, losses, stop_reason="diverged", config={"num_steps": 51}
    )
    assert result.warnings() == []


def test_to_dict_is_json_native_and_round_trips(tmp_path):
    losses = (LOG + 2.0) ** 2 + 1.0
    losses[-1] = np.inf
    result = keras_lr.RangeTestResult(
        LRS, losses, stop_reason="non_finite", config={"beta": 0.9}
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["runs"][0]["losses"][-1] is None
    assert data["suggestions"]["minimum"]["geometric_mean"] == pytest.approx(
        result.suggestion("minimum")
    )
    path = os.path.join(tmp_path, "curve.json")
    result.save_json(path)
    with open(path) as f:
        clone = keras_lr.RangeTestResult.from_dict(json.load(f))
    np.testing.assert_array_equal(clone.learning_rates, result.learning_rates)
    np.testing.assert_array_equal(clone.losses[:-1], result.losses[:-1])
    assert math.isnan(clone.losses[-1])
    assert clone.stop_reason == "non_finite"


def test_plot_saves_a_png_with_band(tmp_path):
    curves = [(LRS, (LOG - c) ** 2 + 1.0) for c in (-2.0, -2.5)]
    result = keras_lr.RangeTestResult.from_runs(curves, ["diverged"] * 2)
    path = os.path.join(tmp_path, "curve.png")
    ax = result.plot(path, methods=("valley", "minimum"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert ax.get_xscale() == "log"
    labels = ax.get_legend_handles_labels()[1]
    assert "valley over 2 repeats" in labels
    assert any(label.startswith("minimum: ") for label in labels)


def test_plot_draws_on_a_given_axes():
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    result = keras_lr.RangeTestResult(LRS, (LOG + 2.0) ** 2 + 1.0)
    assert result.plot(ax=ax) is ax
    assert len(ax.lines) >= 2


def test_never_diverged_only_when_the_curve_did_not_turn_up():
    falling = np.linspace(3.0, 1.0, LRS.size)
    result = keras_lr.RangeTestResult(
        LRS, falling, config={"beta": 0.0, "end_lr": 1.0}
    )
    assert not result.turned_up()
    assert any("never diverged" in m for m in result.warnings())
    # Falls by 2 then rises by 1 (> 0.25 x the fall) before the end.
    rising = np.concatenate([np.linspace(3.0, 1.0, 41), np.linspace(1, 2, 10)])
    result = keras_lr.RangeTestResult(LRS, rising, config={"beta": 0.0})
    assert result.turned_up()
    assert not any("never diverged" in m for m in result.warnings())
