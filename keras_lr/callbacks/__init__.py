"""Keras callbacks for `model.fit`."""

from keras_lr.callbacks.range_test import LRRangeTest

__all__ = [
    "LRRangeTest",
]
