"""Keras callbacks for `model.fit`."""

from keras_lr.callbacks.backup import BackupAndRestore
from keras_lr.callbacks.batch_size import BatchSizeScheduler
from keras_lr.callbacks.batch_size import IncreaseBatchSizeOnPlateau
from keras_lr.callbacks.batch_size import grow_batch_at
from keras_lr.callbacks.range_test import LRRangeTest

__all__ = [
    "BackupAndRestore",
    "BatchSizeScheduler",
    "IncreaseBatchSizeOnPlateau",
    "LRRangeTest",
    "grow_batch_at",
]
