"""Keras callbacks for `model.fit`."""

from keras_lr.callbacks.backup import BackupAndRestore
from keras_lr.callbacks.range_test import LRRangeTest

__all__ = [
    "BackupAndRestore",
    "LRRangeTest",
]
