"""Curves of the rate and momentum for the length of `fit` (the base of
`CyclicLR` and `OneCycleLR`).

The rate is not set from a batch hook (that costs a host sync per step on
TensorFlow and holds the rate for `steps_per_execution` steps): the
callback sets a curve in the optimizer's rate controller at
`on_train_begin`, keyed on the optimizer's step, so every optimizer step
reads its own value in-graph. The momentum (SGD `momentum`, Adam-family
`beta_1`) follows the same step in-graph, inverse to the rate. When
`fit` knows its number of steps, both curves are computed once for the
whole run (vectorized, with the schedules' own functions) and each step
looks its values up.
"""

import numpy as np
from keras import ops

from keras_lr import _checks
from keras_lr.callbacks import _rules
from keras_lr.callbacks._stateful import StatefulCallback
from keras_lr.control import rate_controller
from keras_lr.control.momentum import momentum_attribute

# Steps tabulated at a time when `fit` does not know its length; the
# table is refilled at every epoch.
HORIZON = 8192


def _tabulate(function, positions: np.ndarray) -> np.ndarray:
    """`function` at every position, as float64.

    The schedules are elementwise `keras.ops` code, so one call on a
    vector of steps gives the whole table; a custom `scale_fn` that is
    not elementwise is evaluated step by step.
    """
    try:
        values = ops.convert_to_numpy(function(positions))
        if values.shape == positions.shape:
            return values.astype("float64")
    except Exception:  # any failure means "does not vectorize"
        pass
    return np.array(
        [float(ops.convert_to_numpy(function(int(p)))) for p in positions]
    )


class _CurveCallback(StatefulCallback):
    """Drives the rate (and momentum) along a curve for the length of `fit`.

    The curve is set in the optimizer's rate controller
    (`keras_lr.control`) as a table of every step of the run, computed
    once, vectorized, with the schedules' own functions; each step looks
    its value up in-graph from `optimizer.iterations`, so it is exact with
    `steps_per_execution > 1` and costs no host sync. Nothing is traced
    again after the first `fit` with the same length.

    Position: the curve's step 0 is the optimizer's iteration count at
    the `on_train_begin` of a fresh run (`start_iteration`). A second
    `fit()` therefore starts a new cycle; a run resumed with `set_state`
    (with the optimizer's iterations restored, e.g. by `BackupAndRestore`)
    keeps the recorded `start_iteration` and continues the same cycle.

    After `on_train_end` the optimizer follows its own rate again: a float
    rate set to the last rate the curve gave, or its own schedule; the
    momentum keeps the last value used.
    """

    drives_rate = True

    def __init__(self, cycle_momentum, base_momentum, max_momentum, verbose):
        super().__init__()
        if cycle_momentum is not None:
            _checks.check_bool("cycle_momentum", cycle_momentum)
        _checks.check_closed_interval("base_momentum", base_momentum, 0.0, 1.0)
        _checks.check_closed_interval("max_momentum", max_momentum, 0.0, 1.0)
        _checks.check_non_negative_int("verbose", verbose)
        self.cycle_momentum = cycle_momentum
        self.base_momentum = base_momentum
        self.max_momentum = max_momentum
        self.verbose = verbose
        self.start_iteration = None
        self._resuming = False
        self._controller = None
        self._momentum_name = None
        self._whole_run = False

    # Subclasses provide the curves, as functions of the local step.
    def _schedule(self):
        raise NotImplementedError

    def _momentum_at(self, step):
        raise NotImplementedError

    def _prepare(self) -> None:
        """Hook run at `on_train_begin`, before the curve is computed."""

    def on_train_begin(self, logs=None):
        if self.cycle_momentum is False:
            self._momentum_name = None
        else:
            # Fails before anything was changed when momentum is required.
            self._momentum_name = momentum_attribute(
                self.model.optimizer, required=bool(self.cycle_momentum)
            )
        controller = rate_controller(self.model)
        self._controller = controller
        now = controller.step()
        if not self._resuming:
            self.start_iteration = now
        self._resuming = False
        self._prepare()
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        self._whole_run = bool(epochs and steps)
        # At most epochs * steps steps run in this `fit`, plus one read of
        # the rate after the last.
        length = epochs * steps + 1 if self._whole_run else HORIZON
        self._set_curves(now, length)

    def on_epoch_begin(self, epoch, logs=None):
        if not self._whole_run:
            now = self._controller.step()
            self._set_curves(now, HORIZON)

    def _set_curves(self, now: int, length: int) -> None:
        positions = np.arange(length) + (now - self.start_iteration)
        self._controller.set_curve(_tabulate(self._schedule(), positions), now)
        if self._momentum_name is not None:
            self._controller.set_momentum_curve(
                self._momentum_name,
                _tabulate(self._momentum_at, positions),
                now,
            )

    def on_epoch_end(self, epoch, logs=None):
        rate = self._controller.current()
        if logs is not None:
            logs["learning_rate"] = rate
            if self._momentum_name is not None:
                logs[self._momentum_name] = self._controller.current_momentum()
        if self.verbose > 0:
            _rules.say(
                f"\nEpoch {epoch + 1}: {type(self).__name__} learning rate "
                f"for the next step: {rate:.6g}."
            )

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self._controller is None:
            return
        self._controller.clear_curve(keep_last=True)
        self._controller.clear_momentum_curve(keep_last=True)
        self._controller = None

    def get_state(self) -> dict:
        """The position of the cycle, JSON-native."""
        return {"start_iteration": self.start_iteration}

    def set_state(self, state: dict) -> None:
        """Resumes the cycle at the next `on_train_begin`."""
        start = state["start_iteration"]
        self.start_iteration = None if start is None else int(start)
        self._resuming = self.start_iteration is not None
