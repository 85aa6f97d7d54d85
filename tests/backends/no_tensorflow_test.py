"""keras_lr imports and trains a cyclic rate under JAX with TensorFlow
made unimportable, and its TensorFlow-only features say so in words."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

SCRIPT = r"""
import importlib.abc
import json
import sys


class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"{name} is blocked by the test")
        return None


sys.meta_path.insert(0, NoTensorFlow())

import keras
import numpy as np

import keras_lr

x = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "mse")
logger = keras_lr.callbacks.LearningRateLogger()
cyclic = keras_lr.callbacks.CyclicLR(0.001, 0.01, step_size=3)
history = model.fit(
    x, y, batch_size=8, epochs=3, verbose=0, callbacks=[cyclic, logger]
)

race = keras_lr.choose_learning_rate(
    model, x, y, batch_size=8, budget=48, num_steps=20, seed=0
)

errors = {}
loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=8)
for name, call in {
    "as_dataset": loader.as_dataset,
    "strategy": lambda: keras_lr.distribute.MultiWorkerMirroredStrategy(),
}.items():
    try:
        call()
    except Exception as error:
        errors[name] = [type(error).__name__, str(error)]

print("RESULT " + json.dumps({
    "backend": keras.backend.backend(),
    "tensorflow_loaded": "tensorflow" in sys.modules,
    "rates": logger.learning_rates,
    "momenta": logger.momenta,
    "loss": history.history["loss"],
    "race": [race.learning_rate, race.cost["race_steps"]],
    "errors": errors,
}))
"""


def _triangular(step, low=0.001, high=0.01, size=3):
    cycle = np.floor(1 + step / (2 * size))
    x = np.abs(step / size - 2 * cycle + 1)
    return low + (high - low) * np.maximum(0.0, 1 - x)


@pytest.fixture(scope="module")
def result():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=ROOT)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(line[-1][len("RESULT ") :])


def test_a_cyclic_fit_runs_on_jax_without_tensorflow(result):
    assert result["backend"] == "jax"
    assert result["tensorflow_loaded"] is False
    steps = np.arange(15)
    np.testing.assert_allclose(result["rates"], _triangular(steps), rtol=1e-5)
    # The momentum runs the same wave upside down (0.95 at the low rate).
    wave = (np.asarray(result["rates"]) - 0.001) / 0.009
    np.testing.assert_allclose(
        result["momenta"], 0.95 - 0.1 * wave, rtol=1e-5, atol=1e-6
    )
    assert np.all(np.isfinite(result["loss"]))
    assert result["loss"][-1] < result["loss"][0]


def test_the_race_runs_on_jax_without_tensorflow(result):
    rate, steps = result["race"]
    assert result["tensorflow_loaded"] is False
    assert math.isfinite(rate) and rate > 0
    assert steps > 0


@pytest.mark.parametrize("feature", ["as_dataset", "strategy"])
def test_tensorflow_only_features_say_so(result, feature):
    kind, message = result["errors"][feature]
    assert kind == "BackendError"
    assert "TensorFlow backend only" in message
    assert "'jax'" in message
