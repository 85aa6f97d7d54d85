"""Population-based training and budgeted LR search on Ray Tune.

`ReportAndCheckpoint` reports every epoch's metrics to Ray Tune with a
checkpoint holding what `keras_lr.callbacks.BackupAndRestore` saves (the
model, the optimizer with the rate controller's factor, the state of
every keras_lr callback and loader), and restores a trial from
`ray.tune.get_checkpoint()` at its start. A trial that Ray's
`PopulationBasedTraining` moves onto another trial's checkpoint goes on
from that trial's exact state, with the explored rate applied as the rate
controller's multiplier (over any schedule). A trial that dies and
that Ray restarts goes on exactly from the last checkpoint Ray
registered; an epoch whose result Ray had logged without registering
its checkpoint yet is trained and reported again from the same state
(see `ReportAndCheckpoint`).

Ray is an optional dependency: `pip install "keras-lr[tune]"`.
"""

try:
    import ray.tune  # noqa: F401
except ImportError:
    raise ImportError(
        'keras_lr.tune needs Ray Tune: pip install "keras-lr[tune]"'
    ) from None

from keras_lr.tune.checkpoint import CHECKPOINT_FORMAT
from keras_lr.tune.checkpoint import TrialCheckpoint
from keras_lr.tune.checkpoint import read_checkpoint
from keras_lr.tune.checkpoint import restore_trial
from keras_lr.tune.checks import check_mutations
from keras_lr.tune.checks import check_perturbation_interval
from keras_lr.tune.errors import CheckpointMismatchError
from keras_lr.tune.report import ReportAndCheckpoint

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointMismatchError",
    "ReportAndCheckpoint",
    "TrialCheckpoint",
    "check_mutations",
    "check_perturbation_interval",
    "read_checkpoint",
    "restore_trial",
]
