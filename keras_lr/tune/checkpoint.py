"""The keras_lr Tune checkpoint: what it holds and how a trial reads it.

A checkpoint is a `keras_lr.callbacks.BackupAndRestore` backup (weights
and optimizer variables with the rate controller's factor, every keras_lr
callback's and loader's state, the epoch) plus `keras_lr_tune.json`: the
hyperparameters it was made with, the shapes of the model's weights, and
the epoch, step and rate it was taken at. No second format: a trial's
start copies the checkpoint into the callback's backup folder and
`BackupAndRestore` restores it as after a crash.

When Ray's `PopulationBasedTraining` exploits, the trial starts again on
the donor's checkpoint with an explored config. The rate is then applied
through the rate controller's multiplier, so that the next step runs at
the donor's rate times `new / old`: it works over any schedule (Keras
refuses to assign a rate over a schedule), and the schedule goes on from
the donor's step.
"""

import dataclasses
import json
import os
import shutil

import ray.tune

from keras_lr.tune.errors import CheckpointMismatchError

CHECKPOINT_FORMAT = "keras_lr.tune/1"
"""The format name written into every checkpoint's `keras_lr_tune.json`."""
META_FILE = "keras_lr_tune.json"


def json_safe(value):
    """Config values as JSON (NumPy scalars become Python numbers)."""
    return json.loads(json.dumps(value, default=_plain))


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return repr(value)


def model_fingerprint(model) -> dict:
    """The model's name and the shapes of its weights, in order.

    Variable names differ between two builds of one architecture in one
    process (`dense` and `dense_1`), and Keras loads weights by position,
    so the shapes are what must match.
    """
    return {
        "name": model.name,
        "weights": [[int(d) for d in w.shape] for w in model.weights],
    }


@dataclasses.dataclass(frozen=True)
class TrialCheckpoint:
    """What a keras_lr Tune checkpoint says about itself.

    Attributes:
        path: The folder it was read from.
        hyperparameters: The trial's config when it was written.
        learning_rate_key: The config key holding the learning rate, or
            `None`.
        model: `model_fingerprint` of the model that wrote it.
        epoch: Epochs completed.
        iterations: `optimizer.iterations` at the checkpoint.
        learning_rate: The rate the next step would have used.
        trial_id: The Ray trial that wrote it.
    """

    path: str
    hyperparameters: dict
    learning_rate_key: str | None
    model: dict
    epoch: int
    iterations: int
    learning_rate: float
    trial_id: str | None


def read_checkpoint(path) -> TrialCheckpoint:
    """Reads the description of a keras_lr Tune checkpoint folder.

    Args:
        path: A string, the checkpoint's folder.

    Returns:
        Its `TrialCheckpoint`.

    Raises:
        CheckpointMismatchError: if the folder is not one.
    """
    path = os.fspath(path)
    meta_path = os.path.join(path, META_FILE)
    try:
        with open(meta_path) as file:
            meta = json.load(file)
    except (OSError, ValueError) as error:
        raise CheckpointMismatchError(
            f"Checkpoint {path} is not a keras_lr.tune checkpoint: expected "
            f"{META_FILE} written by keras_lr.tune.ReportAndCheckpoint. "
            f"Received: {error}"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        received = meta.get("format") if isinstance(meta, dict) else meta
        raise CheckpointMismatchError(
            f"Checkpoint {path} has format {received!r}; expected "
            f"{CHECKPOINT_FORMAT!r}."
        )
    return TrialCheckpoint(
        path=path,
        hyperparameters=meta["hyperparameters"],
        learning_rate_key=meta["learning_rate_key"],
        model=meta["model"],
        epoch=int(meta["epoch"]),
        iterations=int(meta["iterations"]),
        learning_rate=float(meta["learning_rate"]),
        trial_id=meta.get("trial_id"),
    )


def restore_trial(backup_dir) -> TrialCheckpoint | None:
    """Puts the trial's Ray Tune checkpoint, if any, into `backup_dir`.

    `ReportAndCheckpoint` calls it in `set_model` (unless given
    `restore=False`, for a Tune function that calls it itself before
    `fit`). After a failure Ray hands a trial its own last registered
    checkpoint; after a PBT exploit, the donor's.

    Args:
        backup_dir: A string, the folder `BackupAndRestore` restores from.
            Its previous content is replaced.

    Returns:
        The checkpoint's `TrialCheckpoint` (its `path` is `backup_dir`),
        or `None` when the trial starts fresh.

    Raises:
        CheckpointMismatchError: if the checkpoint was not written by
            `ReportAndCheckpoint`.
    """
    checkpoint = ray.tune.get_checkpoint()
    if checkpoint is None:
        return None
    backup_dir = os.fspath(backup_dir)
    with checkpoint.as_directory() as source:
        read_checkpoint(source)
        if os.path.isdir(backup_dir):
            shutil.rmtree(backup_dir)
        shutil.copytree(source, backup_dir)
    return read_checkpoint(backup_dir)
