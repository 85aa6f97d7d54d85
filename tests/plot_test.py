"""The plotting helper: values against the closed form, and a real PNG."""

import math

import numpy as np
import pytest

from keras_lr import schedules
from keras_lr.plot import plot_schedule
from keras_lr.plot import schedule_values

pytestmark = pytest.mark.portable


def test_schedule_values_match_closed_form():
    schedule = schedules.PiecewiseConstantDecay([3, 6], [0.1, 0.01, 0.001])
    got = schedule_values(schedule, 9)
    expected = [0.1] * 4 + [0.01] * 3 + [0.001] * 2
    np.testing.assert_allclose(got, expected, rtol=1e-7)


@pytest.mark.needs_float64
def test_schedule_values_of_cosine():
    got = schedule_values(schedules.CosineDecay(0.1, 10), 12)
    expected = [
        0.1 * 0.5 * (1 + math.cos(math.pi * min(s, 10) / 10)) for s in range(12)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_plot_schedule_writes_png(tmp_path):
    path = tmp_path / "one_cycle.png"
    ax = plot_schedule(schedules.OneCycle(0.1, 100), 100, path=str(path))
    line = ax.get_lines()[0]
    assert len(line.get_xdata()) == 100
    assert max(line.get_ydata()) == pytest.approx(0.1, rel=1e-5)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("bad", [0, -3])
def test_num_steps_must_be_positive(bad):
    with pytest.raises(ValueError, match="Argument `num_steps` must be > 0"):
        schedule_values(schedules.OneCycle(0.1, 100), bad)


def test_num_steps_must_be_int():
    with pytest.raises(TypeError, match="Argument `num_steps` must be an int"):
        schedule_values(schedules.OneCycle(0.1, 100), 10.0)
