"""keras_lr: the learning-rate toolkit for Keras 3 on TensorFlow."""

from keras_lr import callbacks
from keras_lr import data
from keras_lr import schedules
from keras_lr.finder.find import find_learning_rate
from keras_lr.finder.result import RangeTestResult

__version__ = "0.1.0"

__all__ = [
    "RangeTestResult",
    "callbacks",
    "data",
    "find_learning_rate",
    "schedules",
]
