"""End to end: a run killed with SIGKILL and restarted with the same command
follows the same trajectory and ends with the same weights."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

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
    ["warmup_cosine_plateau", "one_cycle_momentum", "batch_growth"],
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
    got = trajectory(tmp_path, "run")
    assert sorted(got) == sorted(expected_log)
    for step, row in expected_log.items():
        for key, value in row.items():
            assert got[step][key] == pytest.approx(value, rel=1e-6), (step, key)
    for a, b in zip(weights(tmp_path, "run"), expected_weights):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
