"""Keras callbacks for `model.fit`."""

from keras_lr.callbacks.backup import BackupAndRestore
from keras_lr.callbacks.batch_size import BatchSizeScheduler
from keras_lr.callbacks.batch_size import IncreaseBatchSizeOnPlateau
from keras_lr.callbacks.batch_size import grow_batch_at
from keras_lr.callbacks.cyclic import CyclicLR
from keras_lr.callbacks.cyclic import OneCycleLR
from keras_lr.callbacks.lr_logger import LearningRateLogger
from keras_lr.callbacks.plateau import DivergenceGuard
from keras_lr.callbacks.plateau import ReduceLROnPlateau
from keras_lr.callbacks.range_test import LRRangeTest

__all__ = [
    "BackupAndRestore",
    "BatchSizeScheduler",
    "CyclicLR",
    "DivergenceGuard",
    "IncreaseBatchSizeOnPlateau",
    "LRRangeTest",
    "LearningRateLogger",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "grow_batch_at",
]
