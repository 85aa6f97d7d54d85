"""Data loaders for `model.fit` whose batch size can change between epochs."""

from keras_lr.data.loader import GrowingBatchLoader

__all__ = [
    "GrowingBatchLoader",
]
