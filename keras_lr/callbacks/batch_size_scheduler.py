"""Growing the batch on a schedule, the batch-size counterpart of
`keras.callbacks.LearningRateScheduler` (Smith et al., ICLR 2018)."""

import inspect

from keras_lr import _checks
from keras_lr.callbacks._batch_size import BatchSizeCallback
from keras_lr.callbacks._batch_size import check_growth_factor
from keras_lr.callbacks._batch_size import grown


def grow_batch_at(milestones: list[int], factor: float):
    """A batch-size schedule that multiplies the batch by `factor`.

    For `BatchSizeScheduler`: at the start of each epoch in `milestones`
    the batch size becomes `round(batch_size * factor)`.

    Args:
        milestones: A list of Python ints > 0, strictly increasing: the
            epochs (0-based, as in `on_epoch_begin`) that start with the
            larger batch.
        factor: A Python number > 1. The growth factor (the paper uses 5).

    Returns:
        A function `schedule(epoch, batch_size) -> int`.

    Raises:
        ValueError: if `factor` <= 1 or `milestones` are not positive and
            strictly increasing.

    Example:

    ```python
    schedule = keras_lr.callbacks.grow_batch_at([10, 20], factor=5)
    ```
    """
    _checks.check_number_list("milestones", milestones, min_length=1)
    for milestone in milestones:
        _checks.check_positive_int("milestones", milestone)
    _checks.check_strictly_increasing("milestones", milestones)
    check_growth_factor(factor)
    points = frozenset(int(m) for m in milestones)

    def schedule(epoch, batch_size):
        if epoch in points:
            return grown(batch_size, factor)
        return batch_size

    return schedule


class BatchSizeScheduler(BatchSizeCallback):
    """Sets the loader's batch size at the start of each epoch.

    The batch-size counterpart of `keras.callbacks.LearningRateScheduler`:
    `schedule(epoch, batch_size)` returns the batch size of `epoch` from
    the current one (the *target*, before the cap). Targets above
    `max_batch_size` run at `max_batch_size`, and the rest of the growth is
    applied as learning-rate decay by `max_batch_size / target`, which
    keeps the noise scale `lr / B` the schedule asks for (the paper's
    hybrid). The decay (and `lr_coupling`) multiplies the rate through the
    optimizer's rate controller (`keras_lr.control`), so it works on a
    float rate and on any schedule, and is saved with the optimizer: a
    resumed run (`model.save`, `save_weights`, `BackupAndRestore`) keeps
    it. Adds `batch_size` (of the epoch), `updates` (optimizer steps so
    far) and `learning_rate` to the epoch logs, so `History`, `CSVLogger`
    and `TensorBoard` (placed after this callback) record them.

    ```python
    # Each epoch, before fit reads it:
    target = schedule(epoch, target)
    batch_size = min(target, max_batch_size)
    lr = lr0 * min(1, max_batch_size / target) * coupling(batch_size / b0)
    ```

    Args:
        loader: The `keras_lr.data.GrowingBatchLoader` feeding `fit`
            (itself or through `loader.as_dataset()`).
        schedule: A function `(epoch, batch_size) -> int` or
            `(epoch) -> int`, e.g. `keras_lr.callbacks.grow_batch_at`.
        max_batch_size: A Python int > 0, `"auto"` (default: about
            `N / 10` samples as the paper advises, at least the initial
            batch; under several workers, the largest such size that
            splits evenly over every replica) or `None` (the dataset
            size). Above the dataset size it
            is capped with a warning.
        lr_coupling: `None` (default), `"linear"` or `"sqrt"`: also scale
            the learning rate by `B / B0` or `sqrt(B / B0)` when the batch
            grows (keeps `lr / B` fixed with `"linear"`).
        verbose: A Python int. 1 prints a message at each change.

    Raises:
        ValueError: for a bad `max_batch_size`, `lr_coupling`, or a
            schedule returning a batch size <= 0.

    Example:

    ```python
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=32, seed=0)
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([10, 20], factor=5)
    )
    model.fit(loader.as_dataset(), steps_per_epoch=loader.steps_per_epoch,
              epochs=30, shuffle=False, callbacks=[grow])
    ```

    Reference:
        Smith, Kindermans, Ying and Le, "Don't Decay the Learning Rate,
        Increase the Batch Size", ICLR 2018.
    """

    def __init__(
        self,
        loader,
        schedule,
        max_batch_size="auto",
        lr_coupling=None,
        verbose=0,
    ):
        if not callable(schedule):
            raise TypeError(
                "Argument `schedule` must be callable. Received: "
                f"schedule={schedule!r}"
            )
        super().__init__(loader, max_batch_size, lr_coupling, verbose)
        self.schedule = schedule
        self._two_args = _takes_two_args(schedule)

    def _scheduled_target(self, epoch):
        if self._two_args:
            return self.schedule(epoch, self.target_batch_size)
        return self.schedule(epoch)


def _takes_two_args(function) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in parameters)
    return variadic or len(positional) >= 2
