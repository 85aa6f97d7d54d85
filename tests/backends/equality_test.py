"""The same small problem under TensorFlow, JAX and PyTorch: each
backend's per-step rate and momentum and per-epoch batch size equal
TensorFlow's, and JAX traces its train step once per `fit` configuration.

Each backend runs in its own process (`KERAS_BACKEND` must be set before
Keras is imported), the three at once; a backend that is not installed
is skipped.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.backends.problem import PROBLEMS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
BACKENDS = ("tensorflow", "jax", "torch")
# float32 arithmetic, in another order (JAX computes the cyclical
# position in float32 without its x64 mode).
RTOL = 1e-5


def _installed(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


def _run_all() -> dict:
    processes = {}
    for backend in BACKENDS:
        if not _installed(backend):
            continue
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=ROOT)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        processes[backend] = subprocess.Popen(
            [sys.executable, "-m", "tests.backends.problem"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    results = {}
    for backend, process in processes.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, f"{backend}:\n{err[-3000:]}"
        line = [x for x in out.splitlines() if x.startswith("RESULT ")][-1]
        results[backend] = json.loads(line[len("RESULT ") :])
        assert results[backend]["backend"] == backend
    return results


@pytest.fixture(scope="module")
def results():
    if not _installed("tensorflow"):
        pytest.skip("TensorFlow, the reference, is not installed")
    found = _run_all()
    if len(found) < 2:
        pytest.skip("neither JAX nor PyTorch is installed")
    return found


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_per_step_values_equal_tensorflow(results, backend, problem):
    if backend not in results:
        pytest.skip(f"{backend} is not installed")
    reference = results["tensorflow"][problem]
    got = results[backend][problem]
    assert len(got) == len(reference) == 2
    for ours, theirs in zip(got, reference):
        assert len(ours["rates"]) == len(theirs["rates"]) > 0
        np.testing.assert_allclose(ours["rates"], theirs["rates"], rtol=RTOL)
        np.testing.assert_allclose(
            ours["momenta"], theirs["momenta"], rtol=RTOL
        )
        assert ours["batch_size"] == theirs["batch_size"]


def test_the_problems_exercise_what_they_claim(results):
    tf = results["tensorflow"]
    # Momentum cycles, the plateau cuts, the batch grows to its cap.
    assert len(set(np.round(tf["cyclic"][0]["momenta"], 6))) > 2
    assert len(set(np.round(tf["one_cycle"][0]["momenta"], 6))) > 2
    assert len(set(np.round(tf["plateau"][0]["rates"], 8))) >= 2
    assert tf["batch_growth"][0]["batch_size"] == [4, 8, 8]


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_jax_traces_its_train_step_once_per_fit_configuration(
    results, problem
):
    if "jax" not in results:
        pytest.skip("jax is not installed")
    first, second = results["jax"][problem]
    # One trace per batch shape (the loader's batch grows from 4 to 8).
    shapes = len(set(first["batch_size"])) or 1
    assert first["traces"] == shapes
    # A second `fit` of the same configuration traces nothing.
    assert second["traces"] == 0
