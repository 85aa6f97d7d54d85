"""Keras callbacks for `model.fit`, one public callback per module."""

from keras_lr.callbacks._stateful import StatefulCallback
from keras_lr.callbacks.anytime_cooldown import AnytimeCooldown
from keras_lr.callbacks.backup import BackupAndRestore
from keras_lr.callbacks.batch_logs import LogRateInBatchLogs
from keras_lr.callbacks.batch_size_scheduler import BatchSizeScheduler
from keras_lr.callbacks.batch_size_scheduler import grow_batch_at
from keras_lr.callbacks.cyclic_lr import CyclicLR
from keras_lr.callbacks.divergence_guard import DivergenceGuard
from keras_lr.callbacks.increase_batch_size_on_plateau import (
    IncreaseBatchSizeOnPlateau,
)
from keras_lr.callbacks.learning_rate_logger import LearningRateLogger
from keras_lr.callbacks.one_cycle_lr import OneCycleLR
from keras_lr.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from keras_lr.callbacks.schedule_free import SwapScheduleFreeWeights
from keras_lr.range_test.callback import LRRangeTest

__all__ = [
    "AnytimeCooldown",
    "BackupAndRestore",
    "BatchSizeScheduler",
    "CyclicLR",
    "DivergenceGuard",
    "IncreaseBatchSizeOnPlateau",
    "LRRangeTest",
    "LearningRateLogger",
    "LogRateInBatchLogs",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "StatefulCallback",
    "SwapScheduleFreeWeights",
    "grow_batch_at",
]
