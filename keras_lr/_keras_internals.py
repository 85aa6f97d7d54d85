"""Every private part of Keras that keras_lr relies on, and nowhere else.

Keras 3 has no public way to put an object under an optimizer's rate (its
`learning_rate` setter refuses to replace a schedule and untracks the rate
variable when a schedule replaces it), to read the raw step counter under
gradient accumulation, to resume `fit` at a later epoch, to rebuild the
traced train function, to ask a metric which way it improves, to read
the `z` sequence of `ScheduleFreeAdamW`, to list nested layers, or to
have `fit`'s train step compute its loss with a function of ours. keras_lr
does each of these here, once; `INTERNALS` lists them, and
`tests/keras_internals_test.py` checks that each still exists (and that no
other module uses them), so a Keras upgrade that removes one fails there
first, by name.

Some reliances are behaviours, not names: the order in which Keras calls
something, or what it passes. `BEHAVIOURS` lists each, with the module that
relies on it; `tests/keras_internals_test.py` has one test per behaviour
(`test_behaviour_<name>`) that fails when Keras changes it, and
`tests/undeclared_internals_test.py` scans the package for private uses
outside this module.
"""

import contextlib

import keras

from keras_lr._step_count import StepCount

# name: (the module relying on it, what Keras does that it relies on).
BEHAVIOURS = {
    "optimizer_reads_hyperparameters_in_update": (
        "keras_lr/control/momentum.py",
        "SGD and the Adam family read `self.momentum` / `self.beta_1` "
        "inside the traced update step (converted to a tensor there), so "
        "a float that converts to a scheduled tensor follows the step.",
    ),
    "learning_rate_property_calls_the_rate_slot": (
        "keras_lr/control/controller.py",
        "`optimizer.learning_rate` calls a callable rate slot, both in the "
        "update step and when a user reads it, so the controller decides "
        "what a read outside the train function gives.",
    ),
    "optimizer_saving_walks_its_attributes": (
        "keras_lr/control/saved.py",
        "Keras' saving writes a layer held in an optimizer attribute with "
        "the optimizer's variables (the controller's multiplier).",
    ),
    "fit_reduces_nested_values": (
        "keras_lr/distribute.py",
        "Under a strategy, `fit` calls `strategy.reduce` with the first "
        "batch as a nested structure when it builds the model, and under "
        "a multi-worker strategy with each step's scalar metrics and "
        "`axis=0`; TensorFlow's multi-worker `reduce` accepts neither, "
        "keras_lr's strategy both (tests/distribute checks the second).",
    ),
    "jax_train_step_carries_optimizer_variables": (
        "keras_lr/control/controller.py",
        "On JAX, `fit`'s train step reads and writes the variables in "
        "`optimizer.variables` from the state it carries (others would be "
        "constants of the trace), and `jax_state_sync` writes that state "
        "back so that an assignment between steps takes effect.",
    ),
    "jax_cast_honours_jax_array": (
        "keras_lr/control/momentum.py",
        "On JAX, `ops.cast` of an optimizer hyperparameter calls "
        "`jnp.asarray`, which converts an object through `__jax_array__` "
        "inside the traced step.",
    ),
    "torch_optimizers_read_momentum_after_the_rate": (
        "keras_lr/control/controller.py",
        "On PyTorch, SGD and Adam read `momentum` / `beta_1` as numbers at "
        "each update, after reading the rate: a value set while the rate "
        "is read is the one that update uses.",
    ),
    "torch_sgd_updates_velocity_only_at_nonzero_momentum": (
        "keras_lr/control/momentum.py",
        "On PyTorch, SGD updates its velocity only `if self.momentum != 0`, "
        "tested at every update: a step at momentum 0 keeps the velocity.",
    ),
    "torch_unseeded_layers_draw_from_the_global_generator": (
        "keras_lr/snapshot.py",
        "On PyTorch, an unseeded `Dropout` draws from torch's global "
        "generator, not from a seed-generator variable of the model.",
    ),
}

# (owner, attribute): each private name used below.
INTERNALS = (
    ("Optimizer", "_learning_rate"),
    ("Optimizer", "_iterations"),
    ("Model", "_initial_epoch"),
    ("Model", "make_train_function"),
    ("Model", "train_function"),
    ("Metric", "_direction"),
    ("Optimizer", "_get_variable_index"),
    ("ScheduleFreeAdamW", "_momentums"),
    ("Model", "_flatten_layers"),
    # The range test's loss record (keras_lr/range_test/callback.py): `fit`'s
    # train step reaches `self.compute_loss` (through `_compute_loss`, with
    # `training=True` as a keyword), looked up on the instance when traced.
    ("Model", "compute_loss"),
    # --- Loader (keras_lr/data): what Keras' `fit` does with a step count
    # and what TF does with a distributed dataset's iterators.
    ("Model", "fit"),
    ("DistributedDatasetsFromFunction", "__iter__"),
    # Slots that carry the rate (keras_lr/callbacks/_rate_slots.py).
    ("SGD", "momentums"),
    ("RMSprop", "_momentums"),
    ("Ftrl", "_accumulators"),
    ("Ftrl", "_linears"),
)


# Per backend: (owner, attribute) of each private name used on it only.
BACKEND_INTERNALS = {
    # JAX's `fit` runs a pure train step of the state it passes in (the
    # model's, the optimizer's and the metrics' variables); the rate
    # controller's variables must be among the optimizer's to be read and
    # written in it, and callbacks read variables mid-epoch only after
    # `jax_state_sync` has written that state back.
    "jax": (
        ("Optimizer", "_track_variable"),
        ("Optimizer", "_variables"),
        ("Model", "jax_state_sync"),
        # The range test's loss record is a metric the train step carries.
        ("Model", "_metrics"),
    ),
}


def base_optimizer(optimizer):
    """The optimizer that owns the rate (unwraps `LossScaleOptimizer`)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def rate_slot(optimizer):
    """What the optimizer reads its rate from: a variable, a schedule or a
    callable."""
    return base_optimizer(optimizer)._learning_rate


def set_rate_slot(optimizer, value) -> None:
    """Puts `value` under the optimizer's rate, keeping every variable the
    optimizer tracks (so the order of `optimizer.variables` is unchanged)."""
    base_optimizer(optimizer)._learning_rate = value


def iterations_variable(optimizer):
    """The raw step counter (`optimizer.iterations` divides it under
    gradient accumulation)."""
    return base_optimizer(optimizer)._iterations


def carry_in_train_state(optimizer, variables) -> None:
    """Makes the train step read and write `variables` (keras_lr's
    in-graph state: the controller's multiplier, curves and recorders).

    On TensorFlow and PyTorch the step reads the variables themselves;
    on JAX it is a pure function of the state `fit` passes it, so each
    variable is tracked as one of the optimizer's (after Keras' own, in
    `optimizer.variables`). A traced step that did not carry them is
    traced again: JAX keys its traces on the state's structure.
    """
    if keras.backend.backend() != "jax":
        return
    optimizer = base_optimizer(optimizer)
    _save_without_carried(optimizer)
    known = {id(v) for v in optimizer.variables}
    for variable in variables:
        if id(variable) not in known:
            optimizer._track_variable(variable)
            optimizer._keras_lr_carried.add(id(variable))


def own_variables(optimizer) -> list:
    """`optimizer.variables` without those `carry_in_train_state` added
    (on JAX), i.e. what the optimizer holds on every backend."""
    carried = getattr(base_optimizer(optimizer), "_keras_lr_carried", ())
    return [v for v in optimizer.variables if id(v) not in carried]


# An optimizer that carries keras_lr's variables writes and reads only its
# own in its files, so that a file saved on JAX loads into a plain
# optimizer and back (the controller's multiplier has its own entry). Keras
# finds an optimizer's class by module and name, which the subclass keeps.
_CARRYING_CLASSES: dict = {}


@contextlib.contextmanager
def _without_carried(optimizer):
    every = list(optimizer._variables)
    carried = optimizer._keras_lr_carried
    optimizer._variables[:] = [v for v in every if id(v) not in carried]
    try:
        yield
    finally:
        optimizer._variables[:] = every


def optimizer_class(optimizer) -> type:
    """`optimizer`'s public Keras class (past a loss-scale wrapper, JAX's
    carrying subclass or PyTorch's backend subclass)."""
    cls = type(base_optimizer(optimizer))
    cls = next((b for b, c in _CARRYING_CLASSES.items() if c is cls), cls)
    if not cls.__module__.startswith("keras."):
        return cls  # a user's subclass stays unknown
    public = [c for c in vars(keras.optimizers).values() if isinstance(c, type)]
    return next((c for c in cls.__mro__ if c in public), cls)


def _save_without_carried(optimizer) -> None:
    base = type(optimizer)
    if base in _CARRYING_CLASSES.values():
        return
    carrying = _CARRYING_CLASSES.get(base)
    if carrying is None:

        class Carrying(base):
            def save_own_variables(self, store):
                with _without_carried(self):
                    super().save_own_variables(store)

            def load_own_variables(self, store):
                with _without_carried(self):
                    super().load_own_variables(store)

        for name in ("__name__", "__qualname__", "__module__"):
            setattr(Carrying, name, getattr(base, name))
        carrying = _CARRYING_CLASSES[base] = Carrying
    optimizer._keras_lr_carried = set()
    optimizer.__class__ = carrying


def sync_train_state(model) -> None:
    """Writes the state a JAX `fit` is carrying back into the variables,
    so that a read or an assignment between steps sees and changes the
    values training uses (what Keras' `Callback.model` does before
    handing out the model); nothing on other backends."""
    if model is None or keras.backend.backend() != "jax":
        return
    model.jax_state_sync()


def attach_metric(model, metric) -> None:
    """Makes `metric` one of `model.metrics` (its variables then travel in
    JAX's train state) without Keras' lock on a built model's state."""
    if metric not in model._metrics:
        model._metrics.append(metric)


def detach_metric(model, metric) -> None:
    """Undoes `attach_metric`."""
    if metric in model._metrics:
        model._metrics.remove(metric)


def set_initial_epoch(model, epoch: int) -> None:
    """Makes the running `fit` resume at `epoch` (as Keras' own
    `BackupAndRestore` does)."""
    model._initial_epoch = int(epoch)


def train_function(model):
    """The model's traced train function, or `None` before the first."""
    return getattr(model, "train_function", None)


def set_train_function(model, function) -> None:
    model.train_function = function


def retrace(model) -> None:
    """Rebuilds the model's train function, once, when one exists: the old
    one captured the objects it was traced with."""
    if train_function(model) is not None:
        model.make_train_function(force=True)


def metric_direction(metric) -> str | None:
    """`"up"` or `"down"`: which way a compiled metric improves (what
    Keras 3's `mode="auto"` reads), or `None` when it does not say."""
    return getattr(metric, "_direction", None)


def schedule_free_slot(optimizer, variable):
    """The `z` sequence that `keras.optimizers.ScheduleFreeAdamW` keeps
    for `variable` (its "momentum" slot), or `None` when the optimizer is
    not built or does not train `variable`."""
    optimizer = base_optimizer(optimizer)
    if not optimizer.built:
        return None
    try:
        index = optimizer._get_variable_index(variable)
    except KeyError:
        return None
    return optimizer._momentums[index]


def all_layers(model) -> list:
    """Every layer inside `model`, nested ones included (not `model`)."""
    return list(model._flatten_layers(include_self=False))


def raw_variable_handles(variables) -> list | None:
    """(resource handle, dtype) of each variable's backing TensorFlow
    variable, or `None` unless every one is a plain resource variable
    (another backend, or mirrored under a strategy)."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    backing = [getattr(v, "value", None) for v in variables]
    plain = all(
        isinstance(b, tf.Variable)
        and not isinstance(b, tf.distribute.DistributedValues)
        and hasattr(b, "handle")
        for b in backing
    )
    return [(b.handle, b.dtype) for b in backing] if plain else None


def read_handles(handles) -> list:
    """One raw `ReadVariableOp` per handle from `raw_variable_handles`."""
    import tensorflow as tf

    return [
        tf.raw_ops.ReadVariableOp(resource=handle, dtype=dtype)
        for handle, dtype in handles
    ]


def assign_handles(handles, values) -> None:
    """One raw `AssignVariableOp` per handle, skipping Keras' checks."""
    import tensorflow as tf

    for (handle, _), value in zip(handles, values):
        tf.raw_ops.AssignVariableOp(resource=handle, value=value)


def executing_eagerly() -> bool:
    """Whether the caller runs eagerly, outside any traced function
    (PyTorch: always; JAX: never, so callers keep their traced path
    there)."""
    if keras.backend.backend() == "torch":
        return True
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return tf.executing_eagerly()


# The range test's loss record ---------------------------------------------


def set_compute_loss(model, function) -> tuple:
    """Makes the train step traced next compute its loss with `function`.

    Keras' train step calls `self.compute_loss(..., training=True)` (through
    `Trainer._compute_loss`), looked up on the instance when the step is
    traced, so an instance attribute takes the place of the class's
    method. Returns what `restore_compute_loss` needs: whether the model
    had an instance attribute of its own, and its value.
    """
    own = "compute_loss" in vars(model), vars(model).get("compute_loss")
    model.compute_loss = function
    return own


def restore_compute_loss(model, own: tuple) -> None:
    """Undoes `set_compute_loss`; `own` is what it returned."""
    if "compute_loss" in vars(model):
        del model.compute_loss
    had_own, value = own
    if had_own:
        model.compute_loss = value


def owner_classes() -> dict:
    """The Keras classes `INTERNALS` names, for the test that checks them."""
    return {
        "Optimizer": keras.optimizers.Optimizer,
        "Model": keras.Model,
        "Metric": keras.metrics.Metric,
        "ScheduleFreeAdamW": keras.optimizers.ScheduleFreeAdamW,
        "DistributedDatasetsFromFunction": _distributed_dataset_class(),
        "SGD": keras.optimizers.SGD,
        "RMSprop": keras.optimizers.RMSprop,
        "Ftrl": keras.optimizers.Ftrl,
    }


# --- Loader (keras_lr/data) -----------------------------------------------
#
# Keras 3's `fit` reads the number of steps of an epoch (`steps_per_epoch`,
# or a `PyDataset`'s `num_batches`) once, before the first epoch, and keeps
# the object it got: its epoch loop (`range()` and comparisons each epoch),
# and the progress bar (its total) use that object for every epoch. No
# public route gives `fit` a new count between epochs. `step_count` hands
# it an object that answers those uses with the count in force when asked.
# `tests/keras_internals_test.py` trains through a count that changes
# between epochs and fails if Keras stops re-reading it.


def step_count(read):
    """The number of steps to hand `fit` (as `steps_per_epoch` or a
    `PyDataset`'s `num_batches`) when it changes between epochs: `read`, a
    function of no arguments, gives the count in force."""
    return StepCount(read)


# TensorFlow's distributed dataset makes one iterator per `iter()`; when
# Python releases that iterator, the weak references to it are cleared
# before the iterator's own parts (its per-worker pipelines) are
# destroyed. `on_each_iterator` reports each iterator as it is made, which
# is how the loader learns that the `fit` reading it is gone (a `fit` that
# raises calls no callback). Keras recognises a distributed dataset by the
# names of its classes, so the dataset keeps its class, subclassed.

_TRACKED_CLASSES: dict = {}


def on_each_iterator(dataset, callback) -> None:
    """Makes `dataset` (a `tf.distribute.DistributedDataset`) call
    `callback(iterator)` with each iterator `iter(dataset)` makes."""
    base = type(dataset)
    tracked = _TRACKED_CLASSES.get(base)
    if tracked is None:

        class Tracked(base):
            def __iter__(self):
                iterator = super().__iter__()
                self._keras_lr_on_iterator(iterator)
                return iterator

        tracked = _TRACKED_CLASSES[base] = Tracked
    dataset.__class__ = tracked
    dataset._keras_lr_on_iterator = callback


def _distributed_dataset_class():
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    dataset = strategy.distribute_datasets_from_function(
        lambda _: tf.data.Dataset.range(1)
    )
    return type(dataset)


# Slots that carry the learning rate (keras_lr/callbacks/_rate_slots.py) --


def sgd_velocities(optimizer) -> list:
    """The velocity slots of a built `keras.optimizers.SGD` (none without
    momentum)."""
    return list(getattr(optimizer, "momentums", None) or [])


def rmsprop_momentums(optimizer) -> list:
    """The momentum slots of a built `keras.optimizers.RMSprop` (none
    without momentum)."""
    return list(getattr(optimizer, "_momentums", None) or [])


def ftrl_slots(optimizer) -> tuple[list, list]:
    """The accumulator (`n`) and linear (`z`) slots of a built
    `keras.optimizers.Ftrl`, in the same order."""
    return list(optimizer._accumulators), list(optimizer._linears)
