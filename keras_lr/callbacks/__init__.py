"""Keras callbacks for `model.fit`."""

from keras_lr.callbacks.cyclic import CyclicLR
from keras_lr.callbacks.cyclic import OneCycleLR
from keras_lr.callbacks.lr_logger import LearningRateLogger
from keras_lr.callbacks.plateau import DivergenceGuard
from keras_lr.callbacks.plateau import ReduceLROnPlateau

__all__ = [
    "CyclicLR",
    "DivergenceGuard",
    "LearningRateLogger",
    "OneCycleLR",
    "ReduceLROnPlateau",
]
