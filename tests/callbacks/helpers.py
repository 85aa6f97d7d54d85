"""Tiny seeded models whose updates reveal the rate and momentum used.

A bias-only model on zero inputs with loss `mean(y_pred)` has gradient
exactly 1 at every step, so the weight trajectory of SGD or Adam is a
closed-form function of the per-step rate and momentum, written here in
plain Python: a rate held for several steps, or a momentum read at the
wrong step, changes it.
"""

import math

import keras
import numpy as np
from keras import ops

BATCH = 4


@keras.saving.register_keras_serializable(package="keras_lr_tests")
def mean_prediction(y_true, y_pred):
    return ops.mean(y_pred)


def bias_model(optimizer, steps_per_execution=1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, kernel_initializer="zeros"),
        ]
    )
    model.compile(
        optimizer,
        loss=mean_prediction,
        steps_per_execution=steps_per_execution,
    )
    return model


def zeros_data(steps_per_epoch):
    n = steps_per_epoch * BATCH
    return np.zeros((n, 1), "float32"), np.zeros((n, 1), "float32")


def bias(model) -> float:
    return float(ops.convert_to_numpy(model.layers[0].bias)[0])


def sgd_trajectory(rates, momenta, nesterov=False):
    """Bias after each step of Keras' SGD with gradient 1."""
    w, velocity, out = 0.0, 0.0, []
    for lr, m in zip(rates, momenta):
        velocity = m * velocity - lr * 1.0
        w = w + (m * velocity - lr if nesterov else velocity)
        out.append(w)
    return out


def adam_trajectory(rates, beta1s, beta_2=0.999, epsilon=1e-7):
    """Bias after each step of Keras' Adam with gradient 1.

    Keras computes the bias correction with the current `beta_1` raised to
    the step count (as PyTorch does when `betas` are cycled).
    """
    w, m, v, out = 0.0, 0.0, 0.0, []
    for t, (lr, b1) in enumerate(zip(rates, beta1s), start=1):
        alpha = lr * math.sqrt(1 - beta_2**t) / (1 - b1**t)
        m += (1.0 - m) * (1 - b1)
        v += (1.0 - v) * (1 - beta_2)
        w -= m * alpha / (math.sqrt(v) + epsilon)
        out.append(w)
    return out


class BiasRecorder(keras.callbacks.Callback):
    """Bias after every executed batch (every N steps with N per call)."""

    def on_train_begin(self, logs=None):
        self.values = []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append(bias(self.model))


class Script(keras.callbacks.Callback):
    """Overwrites a metric in the epoch logs with scripted values."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
