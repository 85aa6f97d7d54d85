"""Batch-size growth inside `model.fit` (Smith et al., ICLR 2018).

Cutting the learning rate by a factor `a` and growing the batch by `a`
lower the noise scale of SGD, `g ~ lr * N / B`, by the same amount; the
second does it with `a` times fewer parameter updates. These callbacks grow
the batch of a `keras_lr.data.GrowingBatchLoader` between epochs. Above
`max_batch_size` (memory, or about `N / 10` as the paper advises) the
growth still asked for is applied as learning-rate decay instead (the
paper's "hybrid"): the rate is multiplied by `max_batch_size / target`.
"""

import inspect
import math
import numbers
import warnings

import numpy as np

from keras_lr import _checks
from keras_lr import _lr_control
from keras_lr.callbacks._monitor import MODES
from keras_lr.callbacks._monitor import THRESHOLD_MODES
from keras_lr.callbacks._monitor import PlateauTracker
from keras_lr.callbacks._monitor import resolve_mode
from keras_lr.callbacks._stateful import StatefulCallback
from keras_lr.data import loader as loader_module
from keras_lr.data.loader import GrowingBatchLoader

COUPLINGS = (None, "linear", "sqrt")


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
    _check_growth_factor(factor)
    points = frozenset(int(m) for m in milestones)

    def schedule(epoch, batch_size):
        if epoch in points:
            return max(batch_size + 1, int(round(batch_size * factor)))
        return batch_size

    return schedule


def _check_growth_factor(factor) -> None:
    _checks.check_real("factor", factor)
    if factor <= 1:
        raise ValueError(
            "Argument `factor` must be > 1 (the batch grows). "
            f"Received: factor={factor!r}"
        )


def _scalar(value) -> float:
    return float(np.asarray(value.numpy()))


class _BatchSizeCallback(StatefulCallback):
    """What the batch-size callbacks share: cap, hand-over, logs, state."""

    # No floor on the hybrid's decay unless a subclass takes `min_lr`.
    min_lr = 0.0

    def __init__(self, loader, max_batch_size, lr_coupling, verbose):
        super().__init__()
        if not isinstance(loader, GrowingBatchLoader):
            raise TypeError(
                "Argument `loader` must be a "
                "`keras_lr.data.GrowingBatchLoader`. Received: loader of "
                f"type {type(loader).__name__}"
            )
        _checks.check_choice("lr_coupling", lr_coupling, COUPLINGS)
        _checks.check_non_negative_int("verbose", verbose)
        self.loader = loader
        self.max_batch_size = max_batch_size
        self.lr_coupling = lr_coupling
        self.verbose = verbose
        self.initial_batch_size = loader.batch_size
        self.cap = self._resolve_cap(max_batch_size)
        self._resuming = False
        self._publishes_steps = False
        self._reset()

    def _resolve_cap(self, max_batch_size) -> int:
        n = self.loader.num_samples
        if max_batch_size is None:
            return n
        if max_batch_size == "auto":
            # The paper's advice (grow up to about N / 10), never below
            # the batch the user starts from.
            return max(n // 10, self.initial_batch_size, 1)
        _checks.check_positive_int("max_batch_size", max_batch_size)
        if max_batch_size < self.initial_batch_size:
            raise ValueError(
                "Argument `max_batch_size` must be >= the loader's batch "
                f"size. Received: max_batch_size={max_batch_size}, "
                f"batch_size={self.initial_batch_size}"
            )
        if max_batch_size > n:
            warnings.warn(
                f"`max_batch_size`={max_batch_size} is larger than the "
                f"dataset ({n} samples); capping it at {n}.",
                stacklevel=3,
            )
            return n
        return int(max_batch_size)

    def _reset(self) -> None:
        self.target_batch_size = self.initial_batch_size
        self.lr_multiplier = 1.0
        self.last_scheduled_epoch = -1
        self.epoch = 0
        self.epoch_batch_size = self.initial_batch_size
        self.epoch_start_updates = 0
        self._resume_position = 0

    # Hand-over and coupling --------------------------------------------

    def _lr_multiplier_for(self, target: int, actual: int) -> float:
        multiplier = 1.0
        if target > actual:
            multiplier *= actual / target
        ratio = actual / self.initial_batch_size
        if self.lr_coupling == "linear":
            multiplier *= ratio
        elif self.lr_coupling == "sqrt":
            multiplier *= math.sqrt(ratio)
        return multiplier

    def _set_target(self, target: int, epoch: int) -> None:
        if not isinstance(target, numbers.Integral) or target <= 0:
            raise ValueError(
                f"The batch-size schedule must return an int > 0. Received: "
                f"{target!r} at epoch {epoch}"
            )
        target = int(target)
        actual = min(target, self.cap)
        multiplier = self._lr_multiplier_for(target, actual)
        previous = self.loader.batch_size
        self.target_batch_size = target
        self.loader.batch_size = actual
        wanted = multiplier / self.lr_multiplier
        factor = self._floored(wanted)
        if factor != 1.0:
            new_lr = _lr_control.multiply_learning_rate(self.model, factor)
            if self.verbose:
                print(
                    f"\nEpoch {epoch + 1}: {type(self).__name__} setting the "
                    f"learning rate to {new_lr:.6g} (batch target {target}, "
                    f"cap {self.cap})."
                )
        # The multiplier actually applied: the schedule's own unless
        # `min_lr` held the rate up.
        if factor == wanted:
            self.lr_multiplier = multiplier
        else:
            self.lr_multiplier *= factor
        if self.verbose and actual != previous:
            print(
                f"\nEpoch {epoch + 1}: {type(self).__name__} setting the "
                f"batch size to {actual}."
            )

    def _floored(self, factor: float) -> float:
        """`factor`, raised so that a cut leaves the rate >= `min_lr`.

        As Keras' `ReduceLROnPlateau`: the new rate is
        `max(rate * factor, min_lr)`, and a rate already at or below
        `min_lr` is left alone (compared in float32, as the optimizer
        holds it).
        """
        if factor >= 1.0 or self.min_lr <= 0:
            return factor
        current = _lr_control.current_learning_rate(self.model.optimizer)
        if not current > np.float32(self.min_lr):
            return 1.0
        return max(factor, float(self.min_lr) / current)

    # Keras hooks --------------------------------------------------------

    def _prepare_input(self) -> None:
        """Hands the model's `steps_per_execution` to the loader.

        `as_dataset()` pipelines end each epoch by it. When `fit` reads
        such a pipeline, the combinations it cannot serve exactly are
        refused here, before the first step.
        """
        steps_per_execution = int(getattr(self.model, "steps_per_execution", 1))
        self.loader._steps_per_execution = steps_per_execution
        if self.loader._last_input != "dataset":
            return
        strategy = self.model.distribute_strategy
        if strategy is not self.loader._dataset_strategy:
            raise ValueError(
                "`loader.as_dataset()` was built outside the distribution "
                "strategy of the model: call it inside the same "
                "`strategy.scope()` (Keras' own distribution of a dataset "
                "prefetches across epochs, so a new batch size would take "
                f"effect late). Model strategy: {type(strategy).__name__}; "
                "dataset built under: "
                f"{type(self.loader._dataset_strategy).__name__}"
            )
        if self.loader._dataset_distributed and steps_per_execution > 1:
            raise ValueError(
                loader_module._SPE_UNDER_STRATEGY.format(steps_per_execution)
            )

    def _publish_steps(self) -> None:
        """Puts the current step count in `params` as a plain `int`.

        `fit` stores the loader's live count in the `params` dict it shares
        with every callback (and `History`). The progress bar and the epoch
        loop keep their own reference to it, so they stay right; the dict
        gets a JSON-serializable number, this epoch's.
        """
        params = self.params or {}
        steps = params.get("steps")
        if steps is self.loader.num_batches or self._publishes_steps:
            params["steps"] = int(self.loader.num_batches)
            self._publishes_steps = True

    def on_train_begin(self, logs=None):
        self._prepare_input()
        self._publishes_steps = False
        if self._resuming:
            self._resuming = False
        else:
            self._reset()
            self.loader.batch_size = self.initial_batch_size
        self._publish_steps()

    def _scheduled_target(self, epoch: int) -> int | None:
        """The new target at the start of `epoch`, `None` to keep it."""
        return None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch > self.last_scheduled_epoch:
            target = self._scheduled_target(epoch)
            if target is not None:
                self._set_target(target, epoch)
            self.last_scheduled_epoch = epoch
        position = self._resume_position if epoch == self.epoch else 0
        self._resume_position = 0
        self.loader.begin_epoch(epoch, position=position)
        self.epoch = epoch
        self.epoch_batch_size = self.loader.batch_size
        self.epoch_start_updates = self._updates() - position
        self._publish_steps()

    def _updates(self) -> int:
        return int(_scalar(self.model.optimizer.iterations))

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["batch_size"] = self.epoch_batch_size
        logs["updates"] = self._updates()
        logs["learning_rate"] = _lr_control.current_learning_rate(
            self.model.optimizer
        )

    # State protocol -----------------------------------------------------

    def get_state(self) -> dict:
        """The callback's and its loader's state, JSON-native.

        `position` is the number of batches of the current epoch already
        trained on (from the optimizer's step count), so a run restored
        mid-epoch serves exactly the rest of the epoch.
        """
        position = 0
        if self.model is not None and self.model.optimizer is not None:
            position = max(self._updates() - self.epoch_start_updates, 0)
        loader_state = self.loader.get_state()
        if position >= math.ceil(
            self.loader.num_samples / self.epoch_batch_size
        ):
            # The epoch is complete: resume at the start of the next one.
            position = 0
            loader_state["epoch"] = self.epoch + 1
        loader_state["position"] = position
        return {
            "target_batch_size": self.target_batch_size,
            "lr_multiplier": self.lr_multiplier,
            "last_scheduled_epoch": self.last_scheduled_epoch,
            "epoch": self.epoch,
            "epoch_batch_size": self.epoch_batch_size,
            "position": position,
            "loader": loader_state,
        }

    def set_state(self, state: dict) -> None:
        """Restores `get_state()`; the next `fit` resumes instead of
        resetting."""
        self.target_batch_size = int(state["target_batch_size"])
        self.lr_multiplier = float(state["lr_multiplier"])
        self.last_scheduled_epoch = int(state["last_scheduled_epoch"])
        self.epoch = int(state["epoch"])
        self.epoch_batch_size = int(state["epoch_batch_size"])
        self._resume_position = int(state["position"])
        self.loader.set_state(state["loader"])
        self._resuming = True


class BatchSizeScheduler(_BatchSizeCallback):
    """Sets the loader's batch size at the start of each epoch.

    The batch-size counterpart of `keras.callbacks.LearningRateScheduler`:
    `schedule(epoch, batch_size)` returns the batch size of `epoch` from
    the current one (the *target*, before the cap). Targets above
    `max_batch_size` run at `max_batch_size`, and the rest of the growth is
    applied as learning-rate decay by `max_batch_size / target`, which
    keeps the noise scale `lr / B` the schedule asks for (the paper's
    hybrid). Adds `batch_size` (of the epoch), `updates` (optimizer steps
    so far) and `learning_rate` to the epoch logs, so `History`,
    `CSVLogger` and `TensorBoard` (placed after this callback) record them.

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
            batch) or `None` (the dataset size). Above the dataset size it
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


class IncreaseBatchSizeOnPlateau(_BatchSizeCallback):
    """Grows the batch by `factor` when a metric has stopped improving.

    The batch-size counterpart of `keras.callbacks.ReduceLROnPlateau`, with
    the same arguments and Keras' patience counting: the batch grows at the
    end of the epoch in which the number of epochs without improvement
    reaches `patience`, and the next epoch runs with it. Above
    `max_batch_size` the growth becomes learning-rate decay by the same
    factor (the paper's hybrid). Logs as `BatchSizeScheduler` does.

    ```python
    if epochs_without_improvement == patience:
        target = target * factor
        batch_size = min(target, max_batch_size)
        lr = max(lr * (growth not possible within the cap), min_lr)
    ```

    Args:
        loader: The `keras_lr.data.GrowingBatchLoader` feeding `fit`
            (itself or through `loader.as_dataset()`).
        monitor: A string. The quantity to monitor, e.g. `"val_loss"`.
        factor: A Python number > 1. The batch grows to `batch * factor`.
        patience: A Python int >= 0. Epochs without improvement before
            growing.
        mode: `"auto"`, `"min"` or `"max"`.
        min_delta: A Python float >= 0. The improvement threshold.
        threshold_mode: `"abs"` (Keras' rule, default) or `"rel"`.
        cooldown: A Python int >= 0. Epochs to wait after a growth.
        max_batch_size: As in `BatchSizeScheduler` (default `"auto"`).
        lr_coupling: As in `BatchSizeScheduler`.
        verbose: A Python int. 1 prints a message at each change.
        min_lr: A Python float >= 0. Lower bound on the learning rate when
            growth beyond `max_batch_size` is applied as decay, as in
            `keras.callbacks.ReduceLROnPlateau`: the rate becomes
            `max(rate * decay, min_lr)`, and a rate already at or below
            `min_lr` is left alone.

    Raises:
        ValueError: if `factor` <= 1 or another argument is out of range.

    Example:

    ```python
    grow = keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
        loader, monitor="val_loss", factor=2, patience=3
    )
    model.fit(loader.as_dataset(), steps_per_epoch=loader.steps_per_epoch,
              validation_data=(x_val, y_val), epochs=50, shuffle=False,
              callbacks=[grow])
    ```

    Reference:
        Smith, Kindermans, Ying and Le, "Don't Decay the Learning Rate,
        Increase the Batch Size", ICLR 2018.
    """

    def __init__(
        self,
        loader,
        monitor="val_loss",
        factor=2.0,
        patience=10,
        mode="auto",
        min_delta=1e-4,
        threshold_mode="abs",
        cooldown=0,
        max_batch_size="auto",
        lr_coupling=None,
        verbose=0,
        min_lr=0.0,
    ):
        _check_growth_factor(factor)
        _checks.check_non_negative("min_lr", min_lr)
        _checks.check_choice("mode", mode, MODES)
        _checks.check_choice("threshold_mode", threshold_mode, THRESHOLD_MODES)
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.mode = mode
        self.min_delta = min_delta
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.tracker = PlateauTracker(
            mode=resolve_mode(mode, monitor),
            patience=patience,
            min_delta=min_delta,
            threshold_mode=threshold_mode,
            cooldown=cooldown,
        )
        super().__init__(loader, max_batch_size, lr_coupling, verbose)

    def _reset(self):
        super()._reset()
        self.tracker.reset()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(
                f"{type(self).__name__} is conditioned on metric "
                f"`{self.monitor}` which is not available. Available "
                f"metrics are: {','.join(logs or {})}.",
                stacklevel=2,
            )
            return
        if self.tracker.update(float(value)):
            grown = max(
                self.target_batch_size + 1,
                int(round(self.target_batch_size * self.factor)),
            )
            self._set_target(grown, epoch)

    def get_state(self):
        state = super().get_state()
        state["tracker"] = self.tracker.get_state()
        return state

    def set_state(self, state):
        super().set_state(state)
        self.tracker.set_state(state["tracker"])
