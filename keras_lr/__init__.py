"""keras_lr: the learning-rate toolkit for Keras 3 on TensorFlow."""

from keras_lr import callbacks
from keras_lr import data
from keras_lr import schedules

__version__ = "0.1.0"

__all__ = [
    "callbacks",
    "data",
    "schedules",
]
