"""Keras callbacks for `model.fit`."""

from keras_lr.callbacks.backup import BackupAndRestore

__all__ = [
    "BackupAndRestore",
]
