"""Momentum (SGD `momentum`, Adam-family `beta_1`) computed in-graph.

Keras optimizers read these hyperparameters inside the traced update step
(`ops.cast(self.momentum, dtype)`, `1 - self.beta_1`), so a value that
converts itself to a tensor there follows `optimizer.iterations` at every
step, with no batch hook (a host sync per step on TensorFlow) and exactly
also with `steps_per_execution > 1`.

`InGraphValue` is a Python `float` (its value is the one the optimizer's
config reports, so `model.save` in the middle of training writes a plain
number) that turns into the scheduled tensor whenever it meets a tensor
operation: TensorFlow's conversion protocol, JAX's `__jax_array__`, or
arithmetic.

PyTorch's optimizers in Keras hand the momentum to torch's `_foreach`
kernels as a Python number, so there the attribute is a plain float
holding the value of the step about to run (`set_step_value`; a
`StepValue` where the value is 0): the rate controller sets it each
time the optimizer reads its rate (once per update, before it), as
Keras itself hands those kernels the rate.
"""

import weakref

from keras import ops

from keras_lr import _backend
from keras_lr._keras_internals import base_optimizer

# The attributes we know how to cycle, most specific first.
ATTRIBUTES = ("beta_1", "momentum")


class InGraphValue(float):
    """A float that converts to `function()` inside tensor code."""

    def __new__(cls, value: float, function):
        return super().__new__(cls, value)

    def __init__(self, value: float, function):
        super().__init__()
        self._function = function
        self._per_graph = weakref.WeakKeyDictionary()

    def _value(self):
        # The optimizer reads the attribute once per variable it updates:
        # compute the curve once per traced graph, not once per variable.
        if not _backend.is_tensorflow():
            return self._function()
        tf = _backend.tensorflow("keras_lr's momentum")
        if not tf.inside_function():
            return self._function()
        graph = tf.compat.v1.get_default_graph()
        value = self._per_graph.get(graph)
        if value is None:
            value = self._function()
            self._per_graph[graph] = value
        return value

    def tensor(self, dtype=None):
        value = self._value()
        return value if dtype is None else ops.cast(value, dtype)

    # TensorFlow's conversion protocol: `tf.cast`/`convert_to_tensor`.
    def __tf_tensor__(self, dtype=None, name=None):
        return self.tensor(dtype)

    # JAX's (`jnp.asarray`, which Keras' `ops.cast` calls on JAX).
    def __jax_array__(self):
        return ops.convert_to_tensor(self.tensor())

    # Arithmetic the optimizers do on the raw attribute (`1 - beta_1`,
    # `beta_1 * x`, `momentum - 1`) must stay in-graph too; comparisons
    # (`momentum != 0` when building slots) keep the float's meaning.
    def __add__(self, other):
        return self.tensor() + other

    def __radd__(self, other):
        return other + self.tensor()

    def __sub__(self, other):
        return self.tensor() - other

    def __rsub__(self, other):
        return other - self.tensor()

    def __mul__(self, other):
        return self.tensor() * other

    def __rmul__(self, other):
        return other * self.tensor()

    def __truediv__(self, other):
        return self.tensor() / other

    def __rtruediv__(self, other):
        return other / self.tensor()

    def __pow__(self, other):
        return self.tensor() ** other

    def __rpow__(self, other):
        return other ** self.tensor()

    def __neg__(self):
        return -self.tensor()

    def __reduce__(self):
        # Copies and pickles (e.g. `copy.deepcopy` of a config) get the
        # plain number.
        return (float, (float(self),))


class StepValue(float):
    """The momentum of the step about to run, as a plain float (PyTorch;
    see the module docstring).

    Its value (arithmetic, `float()`, what torch's kernels read) is the
    step's; comparisons answer for `reference`, the momentum the
    optimizer was built with. Keras' PyTorch SGD updates its velocity
    only `if self.momentum != 0` (RMSprop: `> 0`), at every step: a
    curve that passes through 0 must still update it, to
    `0 * velocity - lr * g`, as the traced step on other backends does
    (its branch was chosen once, at the built value).
    """

    def __new__(cls, value: float, reference: float):
        return super().__new__(cls, value)

    def __init__(self, value: float, reference: float):
        super().__init__()
        self.reference = float(reference)

    def __eq__(self, other):
        return self.reference == other

    def __ne__(self, other):
        return self.reference != other

    def __lt__(self, other):
        return self.reference < other

    def __le__(self, other):
        return self.reference <= other

    def __gt__(self, other):
        return self.reference > other

    def __ge__(self, other):
        return self.reference >= other

    __hash__ = float.__hash__

    def __reduce__(self):
        return (float, (float(self),))


def set_step_value(optimizer, name: str, value, reference: float) -> None:
    """Sets `optimizer.<name>` to the momentum of the step about to run.

    A plain float where it compares as `reference` does (every value but
    0.0, momenta being >= 0): a float subclass costs more at every use
    in Keras' update and torch's kernels (several microseconds per step
    on `benchmarks/callbacks_bench.py`'s SGD model). A `StepValue` at
    0.0, so that the velocity is still updated there.
    """
    value = float(value)
    if value == 0.0 and reference != 0.0:
        value = StepValue(value, reference)
    setattr(optimizer, name, value)


def follows_steps() -> bool:
    """Whether the momentum goes into the graph (`InGraphValue`), rather
    than being set before each step (`StepValue`, on PyTorch)."""
    return _backend.name() != "torch"


def scheduled(value: float, function, reference: float):
    """The attribute value that makes the optimizer use `function()` at
    every step, starting from `value`; `reference` is the value the
    optimizer was built with (see `StepValue`)."""
    if follows_steps():
        return InGraphValue(value, function)
    return StepValue(value, reference)


def momentum_attribute(optimizer, required: bool) -> str | None:
    """Name of the momentum hyperparameter to drive, or `None`.

    With `required=False` an optimizer without a momentum to drive gives
    `None`; with `required=True` it is an error that says why.
    """
    optimizer = base_optimizer(optimizer)
    for name in ATTRIBUTES:
        value = getattr(optimizer, name, None)
        if isinstance(value, (InGraphValue, StepValue)):
            return name
        if value is None or isinstance(value, bool):
            continue
        if not isinstance(value, (int, float)):
            if not required:
                return None
            raise TypeError(
                "Argument `cycle_momentum=True` needs the optimizer's "
                f"`{name}` to be a Python float; {type(optimizer).__name__} "
                f"has {name}={value!r}. Pass cycle_momentum=False."
            )
        if name == "momentum" and value <= 0:
            # Keras only creates velocity slots when momentum > 0 at build
            # time: without them there is nothing to cycle.
            if not required:
                return None
            raise ValueError(
                "Argument `cycle_momentum=True` needs an optimizer that "
                f"keeps a momentum, but {type(optimizer).__name__} was "
                f"created with momentum={value!r}, so it has no velocity to "
                "cycle. Create it with a momentum > 0 (e.g. "
                "`keras.optimizers.SGD(momentum=0.9)`) or leave "
                "cycle_momentum at its default."
            )
        return name
    if not required:
        return None
    raise ValueError(
        "Argument `cycle_momentum=True` needs an optimizer with a `momentum` "
        f"or `beta_1` hyperparameter; {type(optimizer).__name__} has neither. "
        "Leave cycle_momentum at its default."
    )
