"""keras_lr: the learning-rate toolkit for Keras 3 (TensorFlow, JAX,
PyTorch)."""

from keras_lr import callbacks
from keras_lr import control
from keras_lr import cooldown
from keras_lr import data
from keras_lr import distribute
from keras_lr import range_test
from keras_lr import schedules
from keras_lr._backend import BackendError
from keras_lr.range_test import RaceResult
from keras_lr.range_test import RangeTestResult
from keras_lr.range_test import choose_learning_rate
from keras_lr.range_test import find_learning_rate

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "RaceResult",
    "RangeTestResult",
    "callbacks",
    "control",
    "cooldown",
    "choose_learning_rate",
    "data",
    "distribute",
    "find_learning_rate",
    "range_test",
    "schedules",
]
