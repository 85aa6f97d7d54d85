"""The one object that owns an optimizer's learning rate and momentum.

Every keras_lr callback drives the rate through the optimizer's
`RateController`, installed once (`rate_controller(model)`) under the
optimizer's rate and never replaced:

```python
rate = curve[step - first]  if a curve is set   else  user_rate(step)
rate = float32(float64(rate) * multiplier)       # one rounding
momentum = momentum_curve[step - first]  (the user's momentum before a
                                           curve, the last one after)
```

- `user_rate` is what the model was compiled with: a float (Keras' own
  rate variable, kept tracked where Keras put it) or any schedule.
- The multiplier carries plateau cuts, the batch-size hybrid's decay and
  any later scaling: a float64 variable saved with the optimizer (below).
  A float rate not driven by a curve takes a cut into Keras' rate
  variable itself instead, with Keras' rounding
  (`float32(float64(lr) * factor)`), so its multiplier stays 1.
- A curve (range-test sweep, cyclic and one-cycle rates) is a float32
  table looked up at `step - first`; the callback that set it owns it and
  sets it again when a run resumes.

Callbacks assign these variables; the traced train function reads them,
so a cut, a new curve of no larger length or a second `fit` traces
nothing new. The multiplier lives in a small layer attached to the
optimizer, so `model.save`, `save_weights` and keras_lr's
`BackupAndRestore` write and read it with the optimizer's own variables;
in a config (`model.save`) the controller is written as the user's rate
with the multiplier applied, so a saved model loads without keras_lr's
callbacks and trains on at the same rate.
"""

import weakref

import keras
import numpy as np
from keras import ops

from keras_lr import _backend
from keras_lr import _keras_internals as internals
from keras_lr.control import momentum as _momentum
from keras_lr.control.saved import STATE_ATTRIBUTE
from keras_lr.control.saved import ControllerVariables
from keras_lr.control.tables import Curve
from keras_lr.control.tables import LastStepRecorder
from keras_lr.control.tables import StepRecorder
from keras_lr.control.tables import capacity_for

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule

def _host(value) -> np.ndarray:
    """A variable's or eager tensor's value on the host. (`np.array()` on a
    Keras variable warns under NumPy 2.)"""
    return _backend.to_numpy(value)


def _torch_on_cpu(variable) -> bool:
    return variable.value.device.type == "cpu"


@keras.saving.register_keras_serializable(package="keras_lr")
class RateController:
    """Owns an optimizer's rate and momentum; see the module docstring.

    Get it with `keras_lr.control.rate_controller(model)`, which installs
    it on first use. Keras reads the rate by calling it (a callable rate,
    like a schedule of the optimizer's own step), and Keras' setter
    (`optimizer.learning_rate = 0.01`, as `keras.callbacks.
    ReduceLROnPlateau` and `LearningRateScheduler` do) goes through
    `assign` to a float rate, as without keras_lr.
    """

    def __init__(self, model):
        self._model = weakref.ref(model)
        optimizer = internals.base_optimizer(model.optimizer)
        self.optimizer = optimizer
        self.learning_rate = internals.rate_slot(optimizer)
        self._counter = internals.iterations_variable(optimizer)
        # PyTorch runs the step eagerly: `_host_call` chooses in Python.
        self._host_side = not _momentum.follows_steps()
        self._on_cpu = self._host_side and _torch_on_cpu(self._counter)
        self._strategy = _backend.strategy_of(model)
        with self._strategy.scope():
            state = getattr(optimizer, STATE_ATTRIBUTE, None)
            if state is None:
                state = ControllerVariables(name="rate_controller")
                setattr(optimizer, STATE_ATTRIBUTE, state)
            self._state = state
        internals.carry_in_train_state(optimizer, [state.multiplier])
        self._curve = None
        self._momentum_curve = None
        self._momentum_name = None
        self._momentum_rest = None
        self._momentum_reference = None
        self._recorder = None

    # What Keras calls ------------------------------------------------------

    @property
    def has_schedule(self) -> bool:
        return not isinstance(self.learning_rate, keras.Variable)

    def _user_rate(self, step):
        rate = self.learning_rate
        if isinstance(rate, LearningRateSchedule):
            return rate(step)
        if callable(rate) and not isinstance(rate, keras.Variable):
            return rate()
        if isinstance(rate, keras.Variable):
            return rate.value
        return ops.convert_to_tensor(rate)

    def _rate(self):
        if self._curve is None and not self.has_schedule:
            # A float rate takes its factor into itself while no curve
            # runs, so this graph reads Keras' variable, as without us.
            rate = self.learning_rate
            step = ops.cast(self._counter, _backend.int64())
            return ops.cast(rate, rate.dtype), step
        if self._host_side:
            # PyTorch, with a schedule (a curve is read on the host, in
            # `_host_call`): torch's own ops, as `keras.ops` costs more
            # than the whole product.
            from keras_lr.control import _torch_ops

            value = self._user_rate(self._counter)
            multiplier = self._state.multiplier.value
            return _torch_ops.rate(value, multiplier), self._counter.value
        step = ops.cast(self._counter, _backend.int64())
        value = ops.cast(self._user_rate(self._counter), _backend.float64())
        if self._curve is not None:
            curve = ops.cast(self._curve.lookup(step), _backend.float64())
            value = ops.where(self._curve.active_tensor(), curve, value)
        value = value * self._state.multiplier
        return ops.cast(value, "float32"), step

    def _reads_as_keras_variable(self) -> bool:
        """Whether a read outside the train function should give Keras'
        own rate variable: a float rate that no curve, factor or recorder
        changes, as `optimizer.learning_rate` gives without keras_lr (so
        `.value`, `.assign(...)` and `.numpy()` work as in Keras)."""
        return (
            not self.has_schedule
            and self._recorder is None
            and internals.executing_eagerly()
            and not self.curve_active
            and float(_host(self._state.multiplier)) == 1.0
        )

    def __call__(self):
        if self._host_side:
            return self._host_call()
        momentum = 0.0
        if self._recorder is not None and self._momentum_name is not None:
            momentum = self._momentum_in_graph()
        if self._reads_as_keras_variable():
            return self.learning_rate
        rate, step = self._rate()
        if self._recorder is not None:
            self._recorder.write(step, rate, momentum)
        return rate

    def _host_call(self):
        """`__call__` on PyTorch, whose step Keras runs eagerly, handing
        torch's kernels the momentum as a Python number (and the rate
        too, for SGD: `alpha=-learning_rate` reads it to the host).

        A driven momentum needs the step on the host anyway; on the CPU
        such a read costs nothing. There the curves are read on the host
        (`Curve.value_at`), at a fraction of what the same lookups cost
        in torch operations. On an accelerator
        with no momentum to drive, the rate is looked up on the device,
        so that nothing waits for the step to finish.
        """
        step = None
        momentum = 0.0
        if self._momentum_name is not None:
            # Keras reads the rate once per update, just before it.
            step = int(self._counter.value)
            momentum = self._momentum_at(step)
            _momentum.set_step_value(
                self.optimizer,
                self._momentum_name,
                momentum,
                self._momentum_reference,
            )
        if self._reads_as_keras_variable():
            return self.learning_rate
        curve = self._curve
        if curve is None or not curve.active:
            rate, _ = self._rate()
        elif step is not None or self._on_cpu:
            if step is None:
                step = int(self._counter.value)
            value = np.float64(curve.value_at(step))
            multiplier = float(self._state.multiplier.value)
            rate = float(np.float32(value * multiplier))
        else:
            from keras_lr.control import _torch_ops

            value = _torch_ops.lookup(
                curve.table.value, curve.first, self._counter.value
            )
            rate = _torch_ops.rate(value, self._state.multiplier.value)
        if self._recorder is not None:
            self._recorder.write(self._counter.value, rate, momentum)
        return rate

    def assign(self, value) -> None:
        """Keras' setter: sets a float rate; a schedule is not settable."""
        self.sync()
        if self.has_schedule:
            # Keras' own words for a scheduled rate.
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` "
                "object as its `learning_rate` constructor argument, hence "
                "its learning rate is not settable."
            )
        self.learning_rate.assign(value)

    # What callbacks call ---------------------------------------------------

    def serve(self, model) -> None:
        """Serves `model` from now on (a model compiled again with the
        same optimizer)."""
        if self._model() is not model:
            self._model = weakref.ref(model)

    def sync(self) -> None:
        """Brings the variables up to date with the running `fit` before
        they are read or assigned from Python (on JAX, mid-epoch; nothing
        to do on other backends)."""
        internals.sync_train_state(self._model())

    def step(self) -> int:
        """The optimizer's raw step count, the position curves are keyed
        on."""
        self.sync()
        return int(_host(self._counter))

    def current(self) -> float:
        """The rate the next optimizer step will use, as a Python float."""
        self.sync()
        if self.curve_active:
            # The traced step's arithmetic on the host: float64 product,
            # one rounding to float32.
            value = np.float64(self._curve.value_at(self.step()))
            return float(np.float32(value * self.multiplier))
        rate, _ = self._rate()
        return float(_host(rate))

    @property
    def state_variables(self) -> list:
        """The controller's own saved variables (today: the multiplier),
        for callers that snapshot and restore an optimizer whole."""
        return [self._state.multiplier]

    def rates_at(self, steps) -> np.ndarray:
        """The user's rate times the multiplier at each of `steps` (what
        the optimizer runs at those steps when no curve drives it), as a
        float64 array."""
        steps = np.asarray(steps, dtype="int64")
        rate = self.learning_rate
        if isinstance(rate, LearningRateSchedule):
            values = None
            try:  # Most schedules are elementwise in the step: one call.
                values = np.asarray(_host(rate(steps)), dtype=np.float64)
            except Exception:  # noqa: BLE001 - fall back to one per step
                pass
            if values is None or values.shape != steps.shape:
                values = [float(_host(rate(int(step)))) for step in steps]
        else:
            values = [float(_host(self._user_rate(None)))] * steps.size
        return np.asarray(values, dtype=np.float64) * self.multiplier

    @property
    def multiplier(self) -> float:
        """The factor on the rate. A float rate takes its factor into
        itself while no curve drives it, so the factor is then 1.0."""
        self.sync()
        return float(_host(self._state.multiplier))

    def multiply(self, factor: float, floor: float | None = None) -> float:
        """Multiplies the rate from the next step on; returns the new rate.

        `floor` bounds the new rate from below (the `min_lr` of a cut). In
        float64, rounded to float32 once: for a float rate that is
        `float32(max(float64(lr) * factor, floor))`, as Keras'
        `ReduceLROnPlateau` computes it.
        """
        factor = float(factor)
        self.sync()
        if self.has_schedule or self.curve_active:
            now = self.current()
            target = now * factor
            if floor is not None:
                target = max(target, float(floor))
            if now > 0:
                self._state.multiplier.assign(self.multiplier * (target / now))
        else:
            old = float(_host(self.learning_rate))
            target = old * factor
            if floor is not None:
                target = max(target, float(floor))
            self.learning_rate.assign(np.float32(target))
        return self.current()

    def scale(self, factor: float) -> None:
        """Multiplies the rate from the next step on by `factor`, reading
        nothing back: `multiply` without a floor or the new rate, for a
        caller that sets many rates (the race, once per candidate).

        With a schedule or a curve, the multiplier becomes
        `multiplier * factor`; a float rate becomes
        `float32(float64(lr) * factor)`, as in `multiply`.
        """
        factor = float(factor)
        self.sync()
        if self.has_schedule or self.curve_active:
            self._state.multiplier.assign(self.multiplier * factor)
        else:
            old = float(_host(self.learning_rate))
            self.learning_rate.assign(np.float32(old * factor))

    def set_curve(self, values, first_step: int) -> None:
        """Drives the rate by `values[step - first_step]` (clipped at both
        ends) from now on; the multiplier still applies."""
        values = np.asarray(values, "float32")
        self.sync()
        self._curve = self._ensure_curve(self._curve, len(values), "rate")
        self._curve.set(values, first_step)

    def clear_curve(self, keep_last: bool = False) -> None:
        """Back to the user's rate. With `keep_last`, a float rate is set
        to the last rate the curve gave (a schedule simply goes on)."""
        if self._curve is None:
            return
        self.sync()
        last = self.current()
        self._curve.deactivate()
        if keep_last and not self.has_schedule:
            # The factor goes back into the float rate.
            self.learning_rate.assign(last)
            self._state.multiplier.assign(1.0)

    @property
    def curve_active(self) -> bool:
        self.sync()
        return self._curve is not None and self._curve.active

    def momentum_name(self, required: bool) -> str | None:
        """`"beta_1"` or `"momentum"`: what `set_momentum_curve` drives."""
        return _momentum.momentum_attribute(self.optimizer, required)

    def set_momentum_curve(self, name: str, values, first_step: int) -> None:
        """Drives `optimizer.<name>` by `values[step - first_step]`."""
        values = np.asarray(values, "float32")
        self.sync()
        if self._momentum_name is None:
            self._install_momentum(name)
        self._momentum_curve = self._ensure_curve(
            self._momentum_curve, len(values), "momentum"
        )
        self._momentum_curve.set(values, first_step)

    def clear_momentum_curve(self, keep_last: bool = False) -> None:
        if self._momentum_curve is None:
            return
        self.sync()
        last = self.current_momentum()
        if keep_last:
            self._momentum_rest = last
        # No curve drives: the table holds the one value at every step
        # (one variable fewer for the traced step to read than a flag and
        # a fallback), so nothing is traced again.
        self._momentum_curve.set(np.float32([self._momentum_rest]), 0)
        if keep_last:
            # The float the config reports follows.
            setattr(
                self.optimizer,
                self._momentum_name,
                _momentum.scheduled(
                    last, self._momentum_value, self._momentum_reference
                ),
            )

    def current_momentum(self) -> float | None:
        if self._momentum_name is None:
            return None
        self.sync()
        return self._momentum_at(self.step())

    def recorder(self, capacity: int) -> StepRecorder | LastStepRecorder:
        """The recorder every step's rate (and momentum) is written into,
        with room for at least `capacity` steps per epoch (`0`: the last
        step only). Callbacks that read it share it: a larger capacity
        replaces it by a larger one, which traces the train function
        again, so callers ask before the first step."""
        held = self._recorder
        if held is None or held.capacity < capacity:
            capacity = max(int(capacity), 0 if held is None else held.capacity)
            self.sync()
            with self._strategy.scope():
                self._recorder = (
                    StepRecorder(capacity) if capacity else LastStepRecorder()
                )
            internals.carry_in_train_state(
                self.optimizer, self._recorder.variables
            )
            self._retrace()
        return self._recorder

    def stop_recording(self) -> None:
        if self._recorder is not None:
            self._recorder = None
            self._retrace()

    @property
    def recorded_momentum(self) -> str | None:
        return self._momentum_name

    # Inside ----------------------------------------------------------------

    def _momentum_value(self):
        if self._momentum_curve is None:
            return ops.convert_to_tensor(self._momentum_rest, "float32")
        # The table is always in force for the momentum (see
        # `clear_momentum_curve`).
        step = ops.cast(self._counter, _backend.int64())
        return self._momentum_curve.lookup(step)

    def _momentum_at(self, step: int) -> float:
        """`_momentum_value` on the host, at a step given as an int."""
        if self._momentum_curve is None:
            return float(np.float32(self._momentum_rest))
        return float(self._momentum_curve.value_at(step))

    def _momentum_in_graph(self):
        """The momentum tensor the optimizer's update reads: computed once
        per traced graph and shared (`InGraphValue`), not computed again
        for the record."""
        value = getattr(self.optimizer, self._momentum_name, None)
        if isinstance(value, _momentum.InGraphValue):
            return value.tensor()
        return self._momentum_value()

    def _install_momentum(self, name: str) -> None:
        start = float(getattr(self.optimizer, name))
        self._momentum_rest = float(np.float32(start))
        self._momentum_name = name
        self._momentum_reference = start
        setattr(
            self.optimizer,
            name,
            _momentum.scheduled(start, self._momentum_value, start),
        )
        self._retrace()

    def _ensure_curve(self, curve, length: int, name: str):
        if curve is not None and curve.capacity >= length:
            return curve
        with self._strategy.scope():
            curve = Curve(capacity_for(length), f"{name}_curve")
        internals.carry_in_train_state(self.optimizer, curve.variables)
        # The graph captured the old table (or none).
        self._retrace()
        return curve

    def _retrace(self) -> None:
        model = self._model()
        if model is not None:
            internals.retrace(model)

    # Saving ----------------------------------------------------------------

    def get_config(self):
        rate = self.learning_rate
        if not self.has_schedule:
            return {"learning_rate": float(_host(rate))}
        return {
            "learning_rate": keras.saving.serialize_keras_object(rate),
            "multiplier": self.multiplier,
        }

    @classmethod
    def from_config(cls, config):
        """The user's rate with the multiplier applied: a float, the
        schedule, or a `keras_lr.schedules.ScaledSchedule` of it."""
        rate = config["learning_rate"]
        if not isinstance(rate, dict):
            return rate
        rate = keras.saving.deserialize_keras_object(rate)
        multiplier = float(config.get("multiplier", 1.0))
        if multiplier == 1.0:
            return rate
        from keras_lr.schedules.scaled import ScaledSchedule

        return ScaledSchedule(rate, scale=multiplier)
