"""Test set-up: two logical CPU devices for `tf.distribute` tests.

This must run before TensorFlow initializes its devices, hence at import.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0],
    [tf.config.LogicalDeviceConfiguration()] * 2,
)


@pytest.fixture
def two_cpu_strategy():
    """A `MirroredStrategy` over two logical CPU devices.

    Gradients are reduced on one device: the default collective all-reduce
    keeps per-process collective instances keyed by order, and a later
    strategy whose gradient shapes differ then fails with "Shape mismatch
    in the collective instance".
    """
    return tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"],
        cross_device_ops=tf.distribute.ReductionToOneDevice(),
    )


@pytest.fixture(autouse=True)
def _clear_keras_session():
    yield
    keras.backend.clear_session()
