"""Errors of `keras_lr.tune`."""


class CheckpointMismatchError(ValueError):
    """A checkpoint that cannot continue this trial: not a keras_lr Tune
    checkpoint, or written by a model with other weights."""
