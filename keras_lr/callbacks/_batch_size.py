"""What the batch-size callbacks share (Smith et al., ICLR 2018).

Cutting the learning rate by a factor `a` and growing the batch by `a`
lower the noise scale of SGD, `g ~ lr * N / B`, by the same amount; the
second does it with `a` times fewer parameter updates. The callbacks grow
the batch of a `keras_lr.data.GrowingBatchLoader` between epochs. Above
`max_batch_size` (memory, or about `N / 10` as the paper advises) the
growth still asked for is applied as learning-rate decay instead (the
paper's "hybrid"): the rate is multiplied by `max_batch_size / target`.

The loader owns the batch size, the epoch and the position; the callback
asks it through its public methods (`request_batch_size`, `begin_epoch`,
`configure_for`, `get_state`/`set_state`). The rate's factor belongs to
the optimizer's rate controller (`keras_lr.control`), which is saved with
the optimizer, so a resumed run does not apply it again.
"""

import math
import numbers
import warnings

from keras_lr import _backend
from keras_lr import _checks
from keras_lr.callbacks import _rules
from keras_lr.callbacks._stateful import StatefulCallback
from keras_lr.control import rate_controller
from keras_lr.data.loader import GrowingBatchLoader

COUPLINGS = (None, "linear", "sqrt")


def check_growth_factor(factor) -> None:
    _checks.check_real("factor", factor)
    if factor <= 1:
        raise ValueError(
            "Argument `factor` must be > 1 (the batch grows). "
            f"Received: factor={factor!r}"
        )


def grown(batch_size: int, factor: float) -> int:
    """`round(batch_size * factor)`, at least one more sample."""
    return max(batch_size + 1, int(round(batch_size * factor)))


class BatchSizeCallback(StatefulCallback):
    """Cap, hand-over to the rate, logs and state of a batch-size callback.

    A subclass says when the target batch size changes: `_scheduled_target`
    at the start of an epoch, or `_set_target` from any hook.
    """

    drives_rate = True

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
                stacklevel=4,
            )
            return n
        return int(max_batch_size)

    def _reset(self) -> None:
        self.target_batch_size = self.initial_batch_size
        self.last_scheduled_epoch = -1
        self.epoch_start_updates = 0
        self._resume_at = None

    def _say(self, message: str) -> None:
        if self.verbose > 0:
            _rules.say(message)

    # Hand-over and coupling --------------------------------------------

    def _rate_multiplier(self, target: int) -> float:
        """The rate's factor for a target batch size, from the start: the
        decay past the cap times the coupling to the batch actually run."""
        actual = min(target, self.cap)
        multiplier = actual / target
        ratio = actual / self.initial_batch_size
        if self.lr_coupling == "linear":
            multiplier *= ratio
        elif self.lr_coupling == "sqrt":
            multiplier *= math.sqrt(ratio)
        return multiplier

    def _set_target(self, target: int, epoch: int) -> None:
        """Makes `target` the batch size asked for from the next epoch.

        The loader runs `min(target, cap)`; the rate takes the change of
        `_rate_multiplier` from the previous target, through the rate
        controller (a decay is floored at `min_lr`, as a cut of Keras'
        `ReduceLROnPlateau`).
        """
        if not isinstance(target, numbers.Integral) or target <= 0:
            raise ValueError(
                f"The batch-size schedule must return an int > 0. Received: "
                f"{target!r} at epoch {epoch}"
            )
        target = int(target)
        factor = self._rate_multiplier(target) / self._rate_multiplier(
            self.target_batch_size
        )
        previous = self.loader.next_batch_size
        self.target_batch_size = target
        actual = self.loader.request_batch_size(min(target, self.cap))
        new_lr = None
        if factor < 1.0:
            new_lr = _rules.cut(
                rate_controller(self.model), factor, self.min_lr
            )
        elif factor > 1.0:
            new_lr = rate_controller(self.model).multiply(factor)
        if new_lr is not None:
            self._say(
                f"\nEpoch {epoch + 1}: {type(self).__name__} setting the "
                f"learning rate to {new_lr:.6g} (batch target {target}, "
                f"cap {self.cap})."
            )
        if actual != previous:
            self._say(
                f"\nEpoch {epoch + 1}: {type(self).__name__} setting the "
                f"batch size to {actual}."
            )

    # Keras hooks --------------------------------------------------------

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
        self.loader.configure_for(self.model)
        if self.max_batch_size == "auto":
            # Under several workers, the largest size up to N / 10 that
            # splits evenly over every replica (the start size does).
            self.cap = self.loader.largest_even_batch_size(
                self._resolve_cap("auto")
            )
        self._publishes_steps = False
        if self._resuming:
            self._resuming = False
        else:
            self._reset()
            self.loader.request_batch_size(self.initial_batch_size)
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
        position = 0
        if self._resume_at is not None and self._resume_at[0] == epoch:
            position = self._resume_at[1]
        self._resume_at = None
        self.loader.begin_epoch(epoch, position=position)
        self.epoch_start_updates = self._updates() - position
        self._publish_steps()

    def _updates(self) -> int:
        return int(_backend.to_numpy(self.model.optimizer.iterations))

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["batch_size"] = self.loader.batch_size
        logs["updates"] = self._updates()
        logs["learning_rate"] = rate_controller(self.model).current()

    def on_train_end(self, logs=None):
        # A multi-worker pipeline waiting for the next epoch stops waiting.
        self.loader.end_training()
        super().on_train_end(logs)

    # State protocol -----------------------------------------------------

    def get_state(self) -> dict:
        """The callback's and its loader's state, JSON-native.

        `position` is the number of batches of the current epoch already
        trained on (from the optimizer's step count), so a run restored
        mid-epoch serves exactly the rest of the epoch; 0 once the epoch
        is complete (the loader's state then opens the next one). The
        rate's factor is not part of it: the optimizer carries it.
        """
        trained = None
        if (
            self._resume_at is None
            and self.model is not None
            and self.model.optimizer is not None
        ):
            trained = max(self._updates() - self.epoch_start_updates, 0)
        # Between `set_state` and the next epoch's start, the loader holds
        # the restored state as it is.
        loader_state = self.loader.get_state(trained_batches=trained)
        return {
            "target_batch_size": self.target_batch_size,
            "last_scheduled_epoch": self.last_scheduled_epoch,
            "position": loader_state["position"],
            "loader": loader_state,
        }

    def data_state(self) -> dict:
        """The loader's own state: what it will serve next."""
        return self.loader.get_state()

    def set_state(self, state: dict) -> None:
        """Restores `get_state()`; the next `fit` resumes instead of
        resetting."""
        self.target_batch_size = int(state["target_batch_size"])
        self.last_scheduled_epoch = int(state["last_scheduled_epoch"])
        self.loader.set_state(state["loader"])
        self._resume_at = (self.loader.epoch, self.loader.position)
        self._resuming = True
