"""End to end: a run killed with SIGKILL and restarted with the same command
follows the same trajectory and ends with the same weights."""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.portable

# Each case trains in two or three fresh processes (about 20 to 60 s each
# under JAX or PyTorch on a busy 2-core machine): there the default suite
# keeps one case (cyclic rate and Adam's beta_1, plateau cuts, a backup
# every step; on JAX killed at an epoch's first step, on PyTorch within an
# epoch, with an unseeded dropout and a validation set) and `-m slow` runs
# the rest.
BACKEND = keras.backend.backend()


def _slow_unless(backends, *values):
    """A case of the default run on `backends`, `slow` on the others."""
    slow = () if BACKEND in backends else (pytest.mark.slow,)
    return pytest.param(*values, marks=slow)


def _elsewhere_slow(*values):
    return _slow_unless(("tensorflow",), *values)


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
TRAINER = os.path.join(os.path.dirname(__file__), "trainer.py")


def train(scenario, tmp_path, tag, kill_at=None):
    """Runs the trainer; returns its return code."""
    command = [
        sys.executable,
        TRAINER,
        scenario,
        str(tmp_path / f"backup-{tag}"),
        str(tmp_path / f"log-{tag}.jsonl"),
        str(tmp_path / f"w-{tag}.npz"),
    ]
    if kill_at is not None:
        command += [str(kill_at[0]), str(kill_at[1])]
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(command, env=env, capture_output=True, timeout=300)
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(done.stderr.decode()[-3000:])
    return done.returncode


def trajectory(tmp_path, tag):
    """Step -> logged values; a step replayed after a restart overwrites
    the first attempt, which the kill cut short before its update."""
    rows = {}
    with open(tmp_path / f"log-{tag}.jsonl") as file:
        for line in file:
            row = json.loads(line)
            rows[row.pop("step")] = row
    return rows


def weights(tmp_path, tag):
    with np.load(tmp_path / f"w-{tag}.npz") as archive:
        return [archive[k] for k in sorted(archive.files)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    cache = {}

    def get(scenario):
        if scenario not in cache:
            path = tmp_path_factory.mktemp(scenario)
            assert train(scenario, path, "ref") == 0
            cache[scenario] = (trajectory(path, "ref"), weights(path, "ref"))
        return cache[scenario]

    return get


@pytest.mark.parametrize(
    "scenario",
    [
        _elsewhere_slow("warmup_cosine_plateau"),
        _elsewhere_slow("one_cycle_momentum"),
        _elsewhere_slow("batch_growth"),
    ],
)
@pytest.mark.parametrize("kill_at", [(3, 2), (5, 0)], ids=["mid", "edge"])
def test_killed_run_resumes_exactly(scenario, kill_at, tmp_path, reference):
    expected_log, expected_weights = reference(scenario)
    assert train(scenario, tmp_path, "run", kill_at) == -signal.SIGKILL
    killed_steps = len(trajectory(tmp_path, "run"))
    assert 0 < killed_steps < len(expected_log)
    assert train(scenario, tmp_path, "run") == 0
    # A restart from scratch would also end right; a resume re-runs at
    # most the one step the kill interrupted (backups every step).
    with open(tmp_path / "log-run.jsonl") as file:
        logged_rows = sum(1 for _ in file)
    assert logged_rows <= len(expected_log) + 1
    check_same_run(tmp_path, expected_log, expected_weights)


def check_same_run(tmp_path, expected_log, expected_weights):
    """Per-step rate, momentum and batch size, and the final weights, as
    in the uninterrupted run."""
    got = trajectory(tmp_path, "run")
    assert sorted(got) == sorted(expected_log)
    for step, row in expected_log.items():
        for key, value in row.items():
            assert got[step][key] == pytest.approx(value, rel=1e-6), (step, key)
    for a, b in zip(weights(tmp_path, "run"), expected_weights):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "scenario, kill_at",
    [
        # The batch outgrows its cap at epoch 3 (LR decay): killed in the
        # epoch after it, and mid-run at a second decay.
        _elsewhere_slow("exponential_decay_hybrid", (4, 1)),
        _elsewhere_slow("exponential_decay_hybrid", (6, 0)),
        _elsewhere_slow("cyclic_plateau_adam", (3, 2)),
        # JAX's default case; PyTorch's adds a dropout (see below).
        _slow_unless(("tensorflow", "jax"), "cyclic_plateau_adam", (5, 0)),
        _elsewhere_slow("one_cycle_logger", (3, 2)),
    ],
)
def test_rate_controller_runs_resume_exactly(
    scenario, kill_at, tmp_path, reference
):
    """The issue's scenarios: every factor lives in the optimizer's rate
    controller, so the resumed run follows the uninterrupted one."""
    expected_log, expected_weights = reference(scenario)
    assert train(scenario, tmp_path, "run", kill_at) == -signal.SIGKILL
    killed_steps = len(trajectory(tmp_path, "run"))
    assert 0 < killed_steps < len(expected_log)
    assert train(scenario, tmp_path, "run") == 0
    check_same_run(tmp_path, expected_log, expected_weights)


@pytest.mark.parametrize(
    "kill_at",
    [
        _slow_unless(("torch",), (3, 2)),
        pytest.param((5, 0), marks=pytest.mark.slow),
    ],
    ids=["mid", "edge"],
)
def test_unseeded_dropout_resumes_exactly(kill_at, tmp_path, reference):
    """An unseeded `Dropout`: on PyTorch its masks, and the draw `fit`
    makes for each data iterator, come from torch's global generator,
    which the backup carries; killed within an epoch (put back at the
    first resumed step) and at an epoch's first step (put back before the
    epoch), the resumed run draws the same masks and ends with the same
    weights. (On TensorFlow and JAX the masks come from a seed-generator
    variable of the model, which every backup holds: `slow` there.)"""
    expected_log, expected_weights = reference("dropout_cyclic_plateau_adam")
    assert train(
        "dropout_cyclic_plateau_adam", tmp_path, "run", kill_at
    ) == -signal.SIGKILL
    assert train("dropout_cyclic_plateau_adam", tmp_path, "run") == 0
    check_same_run(tmp_path, expected_log, expected_weights)


@pytest.mark.parametrize(
    "kill_at",
    [_elsewhere_slow((3, 0)), _elsewhere_slow((4, 3))],
    ids=["start", "mid"],
)
def test_anytime_cooldown_resumes_exactly(kill_at, tmp_path, reference):
    """Killed at the cooldown's first step and in its middle: the resumed
    run sets the same cooldown curve again and stops at the same step."""
    expected_log, expected_weights = reference("anytime_cooldown")
    assert train("anytime_cooldown", tmp_path, "run", kill_at) == (
        -signal.SIGKILL
    )
    assert train("anytime_cooldown", tmp_path, "run") == 0
    check_same_run(tmp_path, expected_log, expected_weights)
    # 3 epochs of 15 steps at the stable rate, then the 40-step cooldown.
    assert sorted(expected_log) == list(range(85))
    assert expected_log[44]["lr"] == pytest.approx(0.05)


@pytest.mark.parametrize(
    "kill_at",
    [_elsewhere_slow((3, 2)), _elsewhere_slow((5, 0))],
    ids=["mid", "edge"],
)
def test_schedule_free_resumes_exactly(kill_at, tmp_path, reference):
    """The epoch-end backups hold the averaged weights x (and z); the
    resumed run recomputes the training point y from them and ends at the
    same x as the uninterrupted run."""
    expected_log, expected_weights = reference("schedule_free")
    assert train("schedule_free", tmp_path, "run", kill_at) == -signal.SIGKILL
    assert train("schedule_free", tmp_path, "run") == 0
    check_same_run(tmp_path, expected_log, expected_weights)
    # Resumed from the last epoch end: only the killed epoch's first
    # `kill_at[1]` steps ran twice.
    with open(tmp_path / "log-run.jsonl") as file:
        assert sum(1 for _ in file) == len(expected_log) + kill_at[1]
