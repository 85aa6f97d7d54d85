"""One small training problem, run by `equality_test.py` under each Keras
backend in its own process (`python -m tests.backends.problem`); prints
one JSON object: per-step rates and momenta, per-epoch batch sizes, and
how many times each `fit` traced its train step.

The model starts from constant weights and the data are seeded NumPy
arrays, so every backend trains the same problem.
"""

import json
import sys

import keras
import numpy as np

import keras_lr

X = np.random.default_rng(0).normal(size=(48, 3)).astype("float32")
Y = (X @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.3).astype("float32")


class CountingModel(keras.Sequential):
    """Counts the times its train step's Python body runs: once per trace
    where the step is compiled (TensorFlow, JAX), once per step where it
    runs eagerly (PyTorch)."""

    traces = 0

    def train_step(self, *args, **kwargs):
        CountingModel.traces += 1
        return super().train_step(*args, **kwargs)


def model(optimizer):
    net = CountingModel(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                4, kernel_initializer=keras.initializers.Constant(0.1)
            ),
            keras.layers.Dense(
                1, kernel_initializer=keras.initializers.Constant(-0.2)
            ),
        ]
    )
    net.compile(optimizer, "mse")
    return net


def fit(net, callbacks, epochs=3, **kwargs):
    """Two `fit` calls of the same configuration; the logger's values and
    the traces each call made."""
    logger = keras_lr.callbacks.LearningRateLogger(capacity=64)
    runs = []
    for _ in range(2):
        before = CountingModel.traces
        data = kwargs or dict(x=X, y=Y, batch_size=12, shuffle=False)
        history = net.fit(
            **data,
            epochs=epochs,
            verbose=0,
            callbacks=[*callbacks, logger],
        )
        runs.append(
            dict(
                rates=list(logger.learning_rates),
                momenta=list(logger.momenta),
                batch_size=history.history.get("batch_size", []),
                traces=CountingModel.traces - before,
            )
        )
    return runs


def cyclic():
    net = model(keras.optimizers.SGD(0.01, momentum=0.9))
    return fit(
        net,
        [
            keras_lr.callbacks.CyclicLR(
                0.001, 0.01, step_size=3, mode="triangular2"
            )
        ],
    )


def one_cycle():
    net = model(keras.optimizers.Adam(0.01))
    return fit(net, [keras_lr.callbacks.OneCycleLR(0.02, total_steps=12)])


def plateau():
    net = model(keras.optimizers.SGD(0.05))
    # No epoch improves by 1e9: a cut after every second epoch.
    cut = keras_lr.callbacks.ReduceLROnPlateau(
        "loss", factor=0.5, patience=1, min_delta=1e9
    )
    return fit(net, [cut], epochs=4)


def batch_growth():
    net = model(keras.optimizers.SGD(0.02, momentum=0.5))
    loader = keras_lr.data.GrowingBatchLoader(
        X, Y, batch_size=4, shuffle=True, seed=1
    )
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1, 2], 2), max_batch_size=8
    )
    return fit(net, [grow], epochs=3, x=loader)


PROBLEMS = {
    "cyclic": cyclic,
    "one_cycle": one_cycle,
    "plateau": plateau,
    "batch_growth": batch_growth,
}


def main(names):
    keras.utils.set_random_seed(0)
    out = {"backend": keras.backend.backend()}
    for name in names:
        out[name] = PROBLEMS[name]()
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:] or list(PROBLEMS))
