"""Cyclical and one-cycle learning rates as callbacks, with momentum cycling.

The rate is not set from a batch hook (that costs a host sync per step on
TensorFlow and holds the rate for `steps_per_execution` steps): the
callback installs the schedule in the optimizer at `on_train_begin`, keyed
on `optimizer.iterations`, so every optimizer step reads its own value
in-graph. The momentum (SGD `momentum`, Adam-family `beta_1`) follows the
same step in-graph, inverse to the rate. When `fit` knows its number of
steps, both curves are computed once for the whole run (vectorized, with
the schedules' own functions) and each step looks its values up.
"""

import keras
import numpy as np
from keras import ops

from keras_lr import _checks
from keras_lr import _lr_control
from keras_lr.callbacks import _momentum
from keras_lr.callbacks._stateful import StatefulCallback
from keras_lr.schedules.cyclical import CyclicalLearningRate
from keras_lr.schedules.cyclical import cyclical_learning_rate
from keras_lr.schedules.join import JoinedSchedule
from keras_lr.schedules.one_cycle import OneCycle
from keras_lr.schedules.one_cycle import one_cycle

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


def _tabulate(function, positions: np.ndarray) -> np.ndarray | None:
    """`function` at every position, as float32, or `None`.

    The schedules are elementwise `keras.ops` code, so one call on a
    vector of steps gives the whole table. A custom `scale_fn` may not be
    elementwise: then the curve is evaluated in-graph at every step.
    """
    try:
        values = ops.convert_to_numpy(function(positions))
    except Exception:  # any failure means "does not vectorize"
        return None
    if values.shape != positions.shape or not np.all(np.isfinite(values)):
        return None
    return values.astype("float32")


def _lookup(table, step, first: int):
    index = ops.clip(
        ops.cast(step, "int64") - first, 0, int(table.shape[0]) - 1
    )
    return ops.take(table, index)


@keras.saving.register_keras_serializable(package="keras_lr")
class TabulatedSchedule(LearningRateSchedule):
    """The rate a cyclic callback drives, read from a table when possible.

    The cyclic callbacks know every step of a `fit()` in advance, so they
    compute the schedule once, vectorized, and the optimizer step only
    looks its value up (a handful of operations instead of the whole
    formula, whose operations cost a few microseconds each in a
    TensorFlow graph on CPU). Without a table it evaluates the schedule.

    The curve belongs to the callback, not to the optimizer: in a config
    (a model saved during training) it is what the optimizer held before
    `fit`: its current rate as a float when that was a float rate (the
    optimizer's variables, the rate variable included, then match what
    loading rebuilds, for `model.save` and `BackupAndRestore` alike), or
    the optimizer's own schedule.

    Args:
        schedule: The `LearningRateSchedule` of the callback.
        values: A float32 numpy array or `None`: `values[i]` is the rate at
            global step `first_step + i`; steps outside are clipped.
        first_step: A Python int. The global step of `values[0]`.
        saved_as: A callable returning the config value of the rate.
    """

    def __init__(self, schedule, values, first_step, saved_as):
        super().__init__()
        self.schedule = schedule
        self.first_step = int(first_step)
        self._saved_as = saved_as
        self._table = None
        if values is not None:
            self._table = ops.convert_to_tensor(np.asarray(values, "float32"))

    def __call__(self, step):
        if self._table is None:
            return self.schedule(step)
        return _lookup(self._table, step, self.first_step)

    def get_config(self):
        return {"learning_rate": self._saved_as()}

    @classmethod
    def from_config(cls, config):
        rate = config["learning_rate"]
        if isinstance(rate, dict):
            return keras.saving.deserialize_keras_object(rate)
        return rate


class _InGraphScheduleCallback(StatefulCallback):
    """Installs a schedule (and a momentum curve) for the length of `fit`.

    Position: the schedule's step 0 is the optimizer's iteration count at
    the `on_train_begin` of a fresh run (`start_iteration`). A second
    `fit()` therefore starts a new cycle; a run resumed with `set_state`
    (with the optimizer's iterations restored, e.g. by `BackupAndRestore`)
    keeps the recorded `start_iteration` and continues the same cycle.

    After `on_train_end` the optimizer holds what it held before `fit`
    again: its float rate variable (set to the last rate the schedule
    gave) or its own schedule, and a plain Python float momentum equal to
    the last value used; so `model.save` after training stores plain
    hyperparameters and no callback object. During training, a saved
    config holds the same kinds of values (see `TabulatedSchedule`), so
    a checkpoint taken mid-run loads into a freshly compiled model.
    """

    def __init__(self, cycle_momentum, base_momentum, max_momentum, verbose):
        super().__init__()
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
        self._installed = None
        self._previous_learning_rate = None
        self._momentum_name = None

    # Subclasses provide the curves, as functions of the local step.
    def _schedule(self):
        raise NotImplementedError

    def _momentum_at(self, step):
        raise NotImplementedError

    def _prepare(self) -> None:
        """Hook run at `on_train_begin`, before the schedule is built."""

    def _local_step(self, optimizer):
        iterations = _lr_control.base_optimizer(optimizer).iterations
        return ops.cast(iterations, "int64") - self.start_iteration

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if self.cycle_momentum:
            # Fail before anything was changed.
            self._momentum_name = _momentum.momentum_attribute(optimizer)
        if not self._resuming:
            base = _lr_control.base_optimizer(optimizer)
            self.start_iteration = int(ops.convert_to_numpy(base.iterations))
        self._resuming = False
        self._prepare()
        schedule = self._schedule()
        if self.start_iteration > 0:
            # `JoinedSchedule` gives the schedule its local step from the
            # boundary on, and still serializes with the optimizer.
            schedule = JoinedSchedule(
                [float(ops.convert_to_numpy(schedule(0))), schedule],
                boundaries=[self.start_iteration],
            )
        base = _lr_control.base_optimizer(optimizer)
        now = int(ops.convert_to_numpy(base.iterations))
        rates = momenta = None
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        if epochs and steps:
            # At most epochs * steps steps run in this `fit`, plus one read
            # of the rate after the last.
            positions = np.arange(epochs * steps + 1) + (
                now - self.start_iteration
            )
            rates = _tabulate(self._schedule(), positions)
            if self.cycle_momentum:
                momenta = _tabulate(self._momentum_at, positions)
        previous = _lr_control.get_learning_rate_object(optimizer)
        self._previous_learning_rate = previous

        def saved_as():
            if isinstance(previous, keras.Variable):
                rate = _lr_control.current_learning_rate(optimizer)
                # The idle rate variable is saved with the optimizer's
                # variables (after the config) and wins on loading: keep
                # it equal to the rate the config reports.
                previous.assign(rate)
                return rate
            return keras.saving.serialize_keras_object(previous)

        installed = TabulatedSchedule(schedule, rates, now, saved_as)
        self._installed = installed
        _lr_control.set_learning_rate_object(self.model, installed)
        if self.cycle_momentum:
            if momenta is not None:
                table = ops.convert_to_tensor(momenta)

                def function():
                    return _lookup(table, base.iterations, now)

            else:

                def function():
                    return self._momentum_at(self._local_step(optimizer))

            start = float(ops.convert_to_numpy(self._momentum_at(0)))
            _momentum.install(optimizer, self._momentum_name, start, function)

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        rate = _lr_control.current_learning_rate(optimizer)
        if logs is not None:
            logs["learning_rate"] = rate
            if self.cycle_momentum:
                logs[self._momentum_name] = _momentum.current(
                    optimizer, self._momentum_name
                )
        if self.verbose > 0:
            print(
                f"\nEpoch {epoch + 1}: {type(self).__name__} learning rate "
                f"for the next step: {rate:.6g}."
            )

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self._installed is None:
            return
        optimizer = self.model.optimizer
        last = _lr_control.current_learning_rate(optimizer)
        previous = self._previous_learning_rate
        if isinstance(previous, keras.Variable):
            previous.assign(last)
        _lr_control.set_learning_rate_object(self.model, previous)
        if self.cycle_momentum:
            value = _momentum.current(optimizer, self._momentum_name)
            _momentum.restore(optimizer, self._momentum_name, value)
        self._installed = None
        self._previous_learning_rate = None

    def get_state(self) -> dict:
        """The position of the cycle, JSON-native."""
        return {"start_iteration": self.start_iteration}

    def set_state(self, state: dict) -> None:
        """Resumes the cycle at the next `on_train_begin`."""
        start = state["start_iteration"]
        self.start_iteration = None if start is None else int(start)
        self._resuming = self.start_iteration is not None


class CyclicLR(_InGraphScheduleCallback):
    """Cycles the learning rate (and the momentum, inversely) during `fit`.

    The rate follows `keras_lr.schedules.CyclicalLearningRate` (the same
    arguments; the three modes and asymmetric half cycles) at every
    optimizer step, computed in-graph from `optimizer.iterations`, so it is
    exact also with `steps_per_execution > 1` and costs no host sync. With
    `cycle_momentum=True` (PyTorch's default) the momentum runs the same
    wave upside down, from `max_momentum` at the low rate to
    `base_momentum` at the high rate:

    ```python
    rate = initial + (maximal - initial) * wave(step) * scale(step)
    momentum = max_momentum - (max_momentum - base_momentum) * wave * scale
    ```

    The cycle starts at step 0 of every fresh `fit()`; `get_state` /
    `set_state` carry its position over a resumed run. After training the
    optimizer holds its previous rate object again (a float rate set to
    the last rate used) and plain float momentum (the last value used).

    Args:
        initial_learning_rate: A Python float >= 0. The lower rate.
        maximal_learning_rate: A Python float > `initial_learning_rate`.
        step_size: A Python number > 0. Steps of the rising half cycle.
        mode: `"triangular"`, `"triangular2"` or `"exp_range"`.
        gamma: A Python float in (0, 1]. Decay factor for `"exp_range"`.
        step_size_down: A Python number > 0 or `None` (same as
            `step_size`). Steps of the falling half cycle.
        scale_fn: `None` or a callable of one tensor, written with
            `keras.ops`, replacing `mode`.
        scale_mode: `"cycle"` or `"iterations"`: what `scale_fn` receives.
        cycle_momentum: A bool. Cycle SGD's `momentum` (must be > 0 when
            the optimizer is created) or Adam-family `beta_1`.
        base_momentum: A Python float in [0, 1]. Momentum at the peak rate.
        max_momentum: A Python float in [0, 1]. Momentum at the low rate.
        verbose: An int. 1: print the rate at the end of every epoch.

    Raises:
        ValueError: for invalid schedule arguments (as
            `CyclicalLearningRate`), and at `on_train_begin` when
            `cycle_momentum=True` and the optimizer has no momentum to
            cycle (e.g. `SGD(momentum=0.0)`).

    Example:

    ```python
    model.compile(keras.optimizers.SGD(momentum=0.9), "mse")
    model.fit(x, y, epochs=8, callbacks=[
        keras_lr.callbacks.CyclicLR(1e-3, 1e-2, step_size=4 * len(x) // 32)
    ])
    ```

    Reference:
        Smith, "Cyclical Learning Rates for Training Neural Networks",
        WACV 2017.
    """

    def __init__(
        self,
        initial_learning_rate,
        maximal_learning_rate,
        step_size,
        mode="triangular",
        gamma=1.0,
        step_size_down=None,
        scale_fn=None,
        scale_mode="cycle",
        cycle_momentum=True,
        base_momentum=0.85,
        max_momentum=0.95,
        verbose=0,
    ):
        super().__init__(cycle_momentum, base_momentum, max_momentum, verbose)
        # Validates every schedule argument once, with the schedule's words.
        self.schedule = CyclicalLearningRate(
            initial_learning_rate,
            maximal_learning_rate,
            step_size,
            mode=mode,
            gamma=gamma,
            step_size_down=step_size_down,
            scale_fn=scale_fn,
            scale_mode=scale_mode,
        )
        self.initial_learning_rate = initial_learning_rate
        self.maximal_learning_rate = maximal_learning_rate
        self.step_size = step_size
        self.mode = mode
        self.gamma = gamma
        self.step_size_down = step_size_down
        self.scale_fn = scale_fn
        self.scale_mode = scale_mode

    def _schedule(self):
        return self.schedule

    def _momentum_at(self, step):
        # The same wave from `max_momentum` towards `base_momentum`: the
        # pure function does not require its "maximal" to be the larger.
        return cyclical_learning_rate(
            step,
            float(self.max_momentum),
            float(self.base_momentum),
            self.step_size,
            self.step_size_down,
            self.mode,
            self.gamma,
            self.scale_fn,
            self.scale_mode,
        )


class OneCycleLR(_InGraphScheduleCallback):
    """The 1cycle policy as a callback, with inverse momentum cycling.

    The rate follows `keras_lr.schedules.OneCycle` (PyTorch's `OneCycleLR`
    values) at every optimizer step, in-graph from `optimizer.iterations`.
    With `cycle_momentum=True` the momentum goes `max_momentum ->
    base_momentum -> max_momentum` (fastai's 0.95, 0.85, 0.95) on the same
    phases and annealing:

    ```python
    rate = one_cycle(step, total_steps, maximal / div_factor, maximal,
                     maximal / div_factor / final_div_factor)
    momentum = one_cycle(step, total_steps, max_momentum, base_momentum,
                         max_momentum)
    ```

    When `total_steps` is `None` it is `epochs * steps_per_epoch` of the
    `fit()` call (known at `on_train_begin`; a dataset of unknown length
    needs an explicit `total_steps`). Past the end, the rate holds its
    final value. Position, resume and what the optimizer holds after
    training are as for `keras_lr.callbacks.CyclicLR`.

    Args:
        maximal_learning_rate: A Python float > 0. The peak rate.
        total_steps: A Python int > 0, or `None` (from `fit`'s epochs and
            steps per epoch).
        pct_start: A Python float in (0, 1). Fraction spent rising.
        div_factor: A Python float > 0. `initial = maximal / div_factor`.
        final_div_factor: A Python float > 0. `final = initial /
            final_div_factor`.
        anneal_strategy: `"cos"` or `"linear"`.
        three_phase: A bool. PyTorch's three-phase variant.
        cycle_momentum: A bool. Cycle SGD's `momentum` or `beta_1`.
        base_momentum: A Python float in [0, 1]. Momentum at the peak rate.
        max_momentum: A Python float in [0, 1]. Momentum at both ends.
        verbose: An int. 1: print the rate at the end of every epoch.

    Raises:
        ValueError: for invalid schedule arguments (as `OneCycle`), and at
            `on_train_begin` for an unknown number of steps without
            `total_steps`, or `cycle_momentum=True` with an optimizer that
            has no momentum to cycle.

    Example:

    ```python
    model.compile(keras.optimizers.AdamW(), "mse")
    model.fit(x, y, epochs=10,
              callbacks=[keras_lr.callbacks.OneCycleLR(1e-2)])
    ```

    Reference:
        Smith & Topin, "Super-Convergence: Very Fast Training of Neural
        Networks Using Large Learning Rates", 2018.
    """

    def __init__(
        self,
        maximal_learning_rate,
        total_steps=None,
        pct_start=0.3,
        div_factor=25.0,
        final_div_factor=1e4,
        anneal_strategy="cos",
        three_phase=False,
        cycle_momentum=True,
        base_momentum=0.85,
        max_momentum=0.95,
        verbose=0,
    ):
        super().__init__(cycle_momentum, base_momentum, max_momentum, verbose)
        self.maximal_learning_rate = maximal_learning_rate
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.anneal_strategy = anneal_strategy
        self.three_phase = three_phase
        self.schedule = None
        # Validate now; with `total_steps=None` use a stand-in length.
        self._make(total_steps if total_steps is not None else 10**6)
        self._total = total_steps
        self._resumed_total = False

    def _make(self, total_steps):
        return OneCycle(
            self.maximal_learning_rate,
            total_steps,
            pct_start=self.pct_start,
            div_factor=self.div_factor,
            final_div_factor=self.final_div_factor,
            anneal_strategy=self.anneal_strategy,
            three_phase=self.three_phase,
        )

    def _prepare(self):
        if self.total_steps is not None:
            self._total = self.total_steps
        elif not self._resumed_total:
            epochs = self.params.get("epochs")
            steps = self.params.get("steps")
            if not epochs or not steps:
                raise ValueError(
                    "Argument `total_steps` is required when `fit` does not "
                    "know the number of steps per epoch (a dataset of "
                    f"unknown length). Received: total_steps=None, "
                    f"epochs={epochs!r}, steps={steps!r}"
                )
            self._total = int(epochs) * int(steps)
        self._resumed_total = False
        self.schedule = self._make(self._total)

    def _schedule(self):
        return self.schedule

    def _momentum_at(self, step):
        return one_cycle(
            step,
            self._total,
            float(self.max_momentum),
            float(self.base_momentum),
            float(self.max_momentum),
            self.pct_start,
            self.anneal_strategy,
            self.three_phase,
        )

    def get_state(self) -> dict:
        state = super().get_state()
        state["total_steps"] = self._total
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        total = state.get("total_steps")
        if total is not None:
            self._total = int(total)
            self._resumed_total = True
