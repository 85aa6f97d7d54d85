"""The rate controller: one in-graph owner of an optimizer's rate and
momentum, under every keras_lr callback."""

from keras_lr.control.controller import RateController
from keras_lr.control.install import installed_controller
from keras_lr.control.install import rate_controller
from keras_lr.control.tables import StepRecorder

__all__ = [
    "RateController",
    "StepRecorder",
    "installed_controller",
    "rate_controller",
]
