"""Starting the cooldown (decay phase) of a running constant rate."""

import time

import numpy as np

from keras_lr import _checks
from keras_lr.callbacks import _rules
from keras_lr.callbacks._stateful import StatefulCallback
from keras_lr.control import rate_controller

SHAPES = ("linear", "cosine", "1-sqrt")

# The clock the time budget is measured with; tests replace it.
_clock = time.monotonic


def _shape(t, shape: str) -> np.ndarray:
    """The cooldown's shape factor: 1 at `t=0`, 0 at `t=1` (float64)."""
    t = np.clip(np.asarray(t, "float64"), 0.0, 1.0)
    if shape == "linear":
        return 1.0 - t
    if shape == "cosine":
        return 0.5 * (1.0 + np.cos(np.pi * t))
    return 1.0 - np.sqrt(t)


class AnytimeCooldown(StatefulCallback):
    """Starts the cooldown of a constant (stable-phase) rate when told to.

    A warmup-stable-decay (WSD) run trains at a constant rate and decays
    it only at the end, so the length of the run need not be fixed in
    advance: this callback starts the decay phase of a running `fit` at a
    chosen epoch, when a monitored metric stops improving, or when a
    wall-time budget is about to run out, whichever comes first. The rate
    `r0` the optimizer uses at that moment (a float, any schedule, with
    any plateau cut applied) is decayed to `final_learning_rate` over
    `decay_steps` optimizer steps:

    ```python
    f = shape(i / decay_steps)       # 1 -> 0; i = steps since the start
    rate = r0 * f + final_learning_rate * (1 - f)
    # "linear": 1 - t; "cosine": (1 + cos(pi t)) / 2; "1-sqrt": 1 - sqrt(t)
    ```

    The decay is a curve in the optimizer's rate controller
    (`keras_lr.control`), looked up in-graph at every step; its table is
    in the graph from the first step, switched off, so starting the
    cooldown traces nothing again (no pause mid-run). The cooldown
    starts at an epoch boundary: before the first step of epoch
    `start_epoch` (0-based, as Keras counts `initial_epoch`), or at the
    end of the epoch where the plateau or the time rule fires. With
    `stop_when_done` (the default) training stops after the cooldown's
    last step: the cooldown is the end of the run. After `fit`, a float
    rate keeps the last rate the curve gave (`final_learning_rate` once
    the cooldown has run); a schedule goes on by itself.

    Time budget: the clock starts at the `on_train_begin` of a fresh run
    and counts the time spent inside `fit` (a resumed run goes on from the
    time recorded in its last backup). The cost of a step is measured from
    the epochs run so far (the first epoch alone, which holds the tracing,
    only until a second one has run). At each epoch end the cooldown
    starts if waiting one more epoch would leave less than the cooldown's
    own estimated duration, `decay_steps * seconds_per_step`: started then,
    it ends at about the budget, and before it when the estimate holds.

    Args:
        decay_steps: A Python int > 0. Length of the cooldown in optimizer
            steps. Give this or `decay_fraction`.
        decay_fraction: A Python float in (0, 1]. Length of the cooldown
            as a fraction of this `fit`'s steps (`epochs * steps`), which
            must then be known. Hägele et al. use 0.1 to 0.2.
        decay_shape: `"1-sqrt"` (default, Hägele et al.'s best), `"linear"`
            or `"cosine"`.
        final_learning_rate: A Python float >= 0. The rate at the end.
        start_epoch: A Python int >= 0 or None. Start the cooldown before
            the first step of this epoch.
        monitor: A string. The metric the plateau rule watches.
        patience: A Python int >= 1 or None (no plateau rule). Start the
            cooldown when `monitor` has not improved for `patience`
            epochs.
        min_delta: A Python float >= 0. Improvement threshold (absolute,
            as Keras' `EarlyStopping`).
        mode: `"auto"`, `"min"` or `"max"`; `"auto"` decides as Keras 3
            does, at the first epoch end.
        time_budget: A Python float > 0 or None (no time rule). Seconds
            of training the run may take.
        stop_when_done: A bool. Stop training when the cooldown is over.
        verbose: An int. 1: print when the cooldown starts and ends.

    Raises:
        ValueError: for no trigger (`start_epoch`, `patience` and
            `time_budget` all None), both or none of `decay_steps` and
            `decay_fraction`, an unknown shape or mode, out-of-range
            values, or `decay_fraction` when `fit` does not know its
            number of steps.

    Example:

    ```python
    model.compile(keras.optimizers.AdamW(3e-4), "mse")
    model.fit(x, y, epochs=20, validation_split=0.1, callbacks=[
        keras_lr.callbacks.AnytimeCooldown(
            decay_steps=100, patience=3, time_budget=3600
        )
    ])
    ```

    Reference:
        Hägele et al., "Scaling Laws and Compute-Optimal Training Beyond
        Fixed Training Durations", NeurIPS 2024.
    """

    drives_rate = True

    def __init__(
        self,
        decay_steps=None,
        decay_fraction=None,
        decay_shape="1-sqrt",
        final_learning_rate=0.0,
        start_epoch=None,
        monitor="val_loss",
        patience=None,
        min_delta=0.0,
        mode="auto",
        time_budget=None,
        stop_when_done=True,
        verbose=0,
    ):
        super().__init__()
        if (decay_steps is None) == (decay_fraction is None):
            raise ValueError(
                "Exactly one of the arguments `decay_steps` and "
                "`decay_fraction` must be given. Received: "
                f"decay_steps={decay_steps!r}, "
                f"decay_fraction={decay_fraction!r}"
            )
        if decay_steps is not None:
            _checks.check_positive_int("decay_steps", decay_steps)
        else:
            _checks.check_real("decay_fraction", decay_fraction)
            if not 0.0 < decay_fraction <= 1.0:
                raise ValueError(
                    "Argument `decay_fraction` must be in (0, 1]. "
                    f"Received: decay_fraction={decay_fraction!r}"
                )
        _checks.check_choice("decay_shape", decay_shape, SHAPES)
        _checks.check_non_negative("final_learning_rate", final_learning_rate)
        if start_epoch is None and patience is None and time_budget is None:
            raise ValueError(
                "AnytimeCooldown needs a trigger: pass `start_epoch`, "
                "`patience` (the plateau rule) or `time_budget`. Received: "
                "start_epoch=None, patience=None, time_budget=None"
            )
        if start_epoch is not None:
            _checks.check_non_negative_int("start_epoch", start_epoch)
        if patience is not None:
            _checks.check_positive_int("patience", patience)
        if time_budget is not None:
            _checks.check_positive("time_budget", time_budget)
        _checks.check_choice("mode", mode, _rules.MODES)
        _checks.check_bool("stop_when_done", stop_when_done)
        _checks.check_non_negative_int("verbose", verbose)
        self._monitored = _rules.MonitoredValue("AnytimeCooldown", monitor)
        self.decay_steps = decay_steps
        self.decay_fraction = decay_fraction
        self.decay_shape = decay_shape
        self.final_learning_rate = final_learning_rate
        self.start_epoch = start_epoch
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.time_budget = time_budget
        self.stop_when_done = stop_when_done
        self.verbose = verbose
        # Validates min_delta.
        self.tracker = _rules.PlateauTracker(
            mode=mode,
            patience=patience or 1,
            min_delta=min_delta,
        )
        self._controller = None
        self._resuming = False
        self._reset()

    # State -----------------------------------------------------------------

    def _reset(self) -> None:
        self.start_step = None
        self.initial_rate = None
        self.cooldown_steps = None
        self._multiplier = 1.0
        self.tracker.reset()
        self._elapsed = 0.0
        self._first_epoch = None  # (seconds, steps) of the first epoch
        self._later = [0.0, 0]  # seconds and steps of the epochs after it
        self._last_epoch_steps = 0
        self._done = False

    @property
    def started(self) -> bool:
        return self.start_step is not None

    def get_state(self) -> dict:
        """Whether and where the cooldown started, the plateau counters
        and the time used, JSON-native."""
        return {
            "start_step": self.start_step,
            "initial_rate": self.initial_rate,
            "multiplier": self._multiplier,
            "cooldown_steps": self.cooldown_steps,
            "done": self._done,
            "tracker": self.tracker.get_state(),
            "elapsed": self._elapsed_now(),
            "first_epoch": (
                None if self._first_epoch is None else list(self._first_epoch)
            ),
            "later_epochs": list(self._later),
        }

    def set_state(self, state: dict) -> None:
        """Takes a state back; the next `fit` resumes (and sets the same
        cooldown curve again) instead of resetting."""
        start = state["start_step"]
        self.start_step = None if start is None else int(start)
        rate = state["initial_rate"]
        self.initial_rate = None if rate is None else float(rate)
        self._multiplier = float(state["multiplier"])
        steps = state["cooldown_steps"]
        self.cooldown_steps = None if steps is None else int(steps)
        self._done = bool(state["done"])
        self.tracker.set_state(state["tracker"])
        self._elapsed = float(state["elapsed"])
        first = state["first_epoch"]
        self._first_epoch = None if first is None else (
            float(first[0]),
            int(first[1]),
        )
        seconds, steps = state["later_epochs"]
        self._later = [float(seconds), int(steps)]
        self._resuming = True

    # Keras hooks -----------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._monitored.reset()
        self._controller = rate_controller(self.model)
        if not self._resuming:
            self._reset()
        self._resuming = False
        if self.decay_fraction is not None:
            epochs, steps = self.params.get("epochs"), self.params.get("steps")
            if not (epochs and steps):
                raise ValueError(
                    "Argument `decay_fraction` needs the number of steps of "
                    "the run, which this `fit` does not know (a dataset of "
                    "unknown length without `steps_per_epoch`). Pass "
                    "`decay_steps` instead. Received: "
                    f"decay_fraction={self.decay_fraction!r}"
                )
        self._fit_start = _clock()
        if self.started:
            self._set_curve()
        else:
            self._reserve_curve()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_step = self._controller.step()
        self._epoch_time = _clock()
        if (
            not self.started
            and self.start_epoch is not None
            and epoch >= self.start_epoch
        ):
            self._start(epoch, f"start_epoch={self.start_epoch}")

    def on_train_batch_end(self, batch, logs=None):
        if not (self.started and self.stop_when_done) or self._done:
            return
        # Counted from the epoch's first step, read once per epoch: no
        # host sync per step.
        step = self._epoch_step + batch + 1
        if step - self.start_step >= self.cooldown_steps:
            self._done = True
            self.model.stop_training = True
            self._say(
                f"\nEpoch {self._epoch + 1}: AnytimeCooldown finished the "
                f"cooldown at step {step}; stopping training."
            )

    def on_epoch_end(self, epoch, logs=None):
        self._measure()
        if logs is not None:
            logs["learning_rate"] = self._controller.current()
        if self.started:
            return
        if self.patience is not None:
            value = self._monitored.read(logs)
            if value is not None:
                self.tracker.resolve(self.monitor, self.model)
                if self.tracker.update(value):
                    self._start(
                        epoch,
                        f"`{self.monitor}` did not improve for "
                        f"{self.patience} epochs",
                        at_end=True,
                    )
                    return
        if self.time_budget is not None:
            left = self.time_budget - self._elapsed_now()
            per_step = self._seconds_per_step()
            steps = self.params.get("steps") or self._last_epoch_steps
            needed = self._length() * per_step
            # Waiting one more epoch would leave less than the cooldown.
            if left - steps * per_step < needed:
                self._start(
                    epoch,
                    f"{left:.4g} s of the {self.time_budget:g} s time budget "
                    f"left, the cooldown needs about {needed:.4g} s",
                    at_end=True,
                )

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self._controller is None:
            return
        self._elapsed = self._elapsed_now()
        self._fit_start = None
        self._controller.clear_curve(keep_last=True)
        self._controller = None

    # Inside ----------------------------------------------------------------

    def _say(self, message: str) -> None:
        if self.verbose > 0:
            _rules.say(message)

    def _elapsed_now(self) -> float:
        start = getattr(self, "_fit_start", None)
        if start is None:
            return self._elapsed
        return self._elapsed + (_clock() - start)

    def _measure(self) -> None:
        """Records the epoch's duration and steps for the time rule."""
        if self.time_budget is None:
            return
        seconds = _clock() - self._epoch_time
        steps = self._controller.step() - self._epoch_step
        self._last_epoch_steps = steps
        if steps <= 0:
            return
        if self._first_epoch is None:
            self._first_epoch = (seconds, steps)
        else:
            self._later[0] += seconds
            self._later[1] += steps

    def _seconds_per_step(self) -> float:
        if self._later[1] > 0:
            return self._later[0] / self._later[1]
        if self._first_epoch is not None:
            return self._first_epoch[0] / self._first_epoch[1]
        return 0.0

    def _length(self) -> int:
        if self.decay_steps is not None:
            return int(self.decay_steps)
        total = self.params["epochs"] * self.params["steps"]
        return max(1, round(self.decay_fraction * total))

    def _start(self, epoch: int, reason: str, at_end: bool = False) -> None:
        controller = self._controller
        self.start_step = controller.step()
        self.initial_rate = controller.current()
        self._multiplier = controller.multiplier
        self.cooldown_steps = self._length()
        self._set_curve()
        where = "after" if at_end else "before"
        self._say(
            f"\nEpoch {epoch + 1}: AnytimeCooldown starting the cooldown "
            f"{where} this epoch ({reason}): learning rate "
            f"{self.initial_rate:.6g} -> {self.final_learning_rate:.6g} over "
            f"{self.cooldown_steps} steps ({self.decay_shape})."
        )

    def _reserve_curve(self) -> None:
        """Gives the rate controller a curve table for the cooldown now,
        switched off, so that starting it later only assigns variables.

        A new table (or a larger one) changes the graph: made mid-run it
        would trace the train function again (seconds on a large model,
        outside the time budget's estimate). Made here, before the first
        step, the one trace `fit` does anyway includes it. A curve that
        another callback is running is left alone.
        """
        controller = self._controller
        if controller.curve_active:
            return
        controller.set_curve(np.zeros(self._length() + 1), controller.step())
        controller.clear_curve()

    def _set_curve(self) -> None:
        n = self.cooldown_steps
        f = _shape(np.arange(n + 1) / n, self.decay_shape)
        values = self.initial_rate * f + self.final_learning_rate * (1.0 - f)
        # The controller multiplies any curve by its factor.
        self._controller.set_curve(values / self._multiplier, self.start_step)
