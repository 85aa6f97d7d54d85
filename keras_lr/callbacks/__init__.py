"""Keras callbacks for `model.fit`."""

from keras_lr.callbacks.batch_size import BatchSizeScheduler
from keras_lr.callbacks.batch_size import IncreaseBatchSizeOnPlateau
from keras_lr.callbacks.batch_size import grow_batch_at

__all__ = [
    "BatchSizeScheduler",
    "IncreaseBatchSizeOnPlateau",
    "grow_batch_at",
]
