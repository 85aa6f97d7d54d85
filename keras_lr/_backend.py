"""Which Keras backend runs, and TensorFlow only where it is needed.

keras_lr runs on every Keras 3 backend (TensorFlow, JAX, PyTorch). A few
features are TensorFlow's own (`tf.data` pipelines, `tf.distribute`
multi-worker training, TensorBoard event files): the modules holding them
import TensorFlow through `tensorflow()` below, when the feature is used,
so that `import keras_lr` never needs TensorFlow, and a TensorFlow-only
feature on another backend raises `BackendError` saying so.
"""

import contextlib

import keras
import numpy as np


class BackendError(RuntimeError):
    """A keras_lr feature that the running Keras backend cannot serve."""


def name() -> str:
    """The Keras backend in use: "tensorflow", "jax", "torch", ..."""
    return keras.backend.backend()


def is_tensorflow() -> bool:
    return name() == "tensorflow"


def is_jax() -> bool:
    return name() == "jax"


def has_x64() -> bool:
    """Whether the backend computes in 64 bits (JAX only with its
    `jax_enable_x64` option on)."""
    if not is_jax():
        return True
    import jax

    return bool(jax.config.jax_enable_x64)


def float64() -> str:
    """ "float64", or "float32" where the backend has no 64 bits."""
    return "float64" if has_x64() else "float32"


def int64() -> str:
    """ "int64", or "int32" where the backend has no 64 bits."""
    return "int64" if has_x64() else "int32"


def to_numpy(value) -> np.ndarray:
    """The value of a Keras variable or a tensor of any backend, on the
    host. (`np.array()` of a Keras variable warns under NumPy 2.)"""
    if isinstance(value, keras.Variable):
        value = value.value
    numpy = getattr(value, "numpy", None)
    if is_tensorflow() and numpy is not None:
        return np.asarray(numpy())
    if (
        name() == "torch"
        and keras.ops.is_tensor(value)
        and str(value.dtype) != "torch.bfloat16"  # NumPy has no bfloat16
    ):
        # Keras' `convert_to_numpy` calls `np.array()` on the tensor,
        # which NumPy 2 flags (torch's `__array__` has no `copy`).
        return value.detach().cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(value))


def take(table, index):
    """`table[index]` for an index already in range: one gather op on
    TensorFlow (`keras.ops.take` adds the handling of negative indices,
    several more ops at every step a curve is looked up)."""
    if is_tensorflow():
        return tensorflow("keras_lr's curves").gather(table, index)
    return keras.ops.take(table, index)


def require_tensorflow(feature: str, why: str):
    """Raises `BackendError` unless the backend is TensorFlow; returns the
    `tensorflow` module.

    Args:
        feature: A string, the feature as the user named it, e.g.
            "`GrowingBatchLoader.as_dataset()`".
        why: A string, what in it is TensorFlow's, e.g. "it builds a
            `tf.data` pipeline".
    """
    if not is_tensorflow():
        raise BackendError(
            f"{feature} runs on the TensorFlow backend only: {why}. "
            f"The Keras backend is {name()!r} (set KERAS_BACKEND="
            "tensorflow before importing keras to use it)."
        )
    return tensorflow(feature)


def tensorflow(feature: str):
    """The `tensorflow` module, or an `ImportError` naming `feature` and
    the extra that installs it."""
    try:
        import tensorflow as tf
    except ImportError:
        raise ImportError(
            f"{feature} needs TensorFlow, which is not installed: "
            'pip install "keras-lr[tensorflow]"'
        ) from None
    return tf


def tensorflow_if_loaded():
    """The `tensorflow` module when it is already imported (by Keras' own
    TensorFlow backend or by the user), else `None`; imports nothing."""
    import sys

    return sys.modules.get("tensorflow")


def is_tf_dataset(value) -> bool:
    """Whether `value` is a `tf.data.Dataset` (never imports TensorFlow:
    a dataset exists only once TensorFlow is loaded)."""
    tf = tensorflow_if_loaded()
    return tf is not None and isinstance(value, tf.data.Dataset)


def is_tensor(value) -> bool:
    """Whether `value` is a tensor of the running backend (or a
    TensorFlow tensor when TensorFlow is loaded)."""
    if keras.ops.is_tensor(value):
        return True
    tf = tensorflow_if_loaded()
    return tf is not None and tf.is_tensor(value)


class _OneDevice:
    """What keras_lr asks of a model's distribution strategy, on a backend
    without `tf.distribute`: one replica, one worker, no scope."""

    num_replicas_in_sync = 1
    cluster_resolver = None

    def scope(self):
        return contextlib.nullcontext()


ONE_DEVICE = _OneDevice()


def strategy_of(model):
    """`model.distribute_strategy` on TensorFlow; a one-device stand-in on
    other backends (Keras' own distribution there lives elsewhere)."""
    strategy = getattr(model, "distribute_strategy", None)
    return ONE_DEVICE if strategy is None else strategy


def current_strategy():
    """The strategy in scope on TensorFlow, else the one-device stand-in."""
    if not is_tensorflow():
        return ONE_DEVICE
    import tensorflow as tf

    return tf.distribute.get_strategy()
