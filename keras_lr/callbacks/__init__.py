"""Keras callbacks for `model.fit`."""

from keras_lr.callbacks.cyclic import CyclicLR
from keras_lr.callbacks.cyclic import OneCycleLR

__all__ = [
    "CyclicLR",
    "OneCycleLR",
]
