"""Every private part of Keras that keras_lr relies on, and nowhere else.

Keras 3 has no public way to put an object under an optimizer's rate (its
`learning_rate` setter refuses to replace a schedule and untracks the rate
variable when a schedule replaces it), to read the raw step counter under
gradient accumulation, to resume `fit` at a later epoch, to rebuild the
traced train function, to ask a metric which way it improves, to read
the `z` sequence of `ScheduleFreeAdamW`, or to list nested layers. keras_lr
does each of these here, once; `INTERNALS` lists them, and
`tests/keras_internals_test.py` checks that each still exists (and that no
other module uses them), so a Keras upgrade that removes one fails there
first, by name.
"""

import keras

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
    # Slots that carry the rate (keras_lr/callbacks/_rate_slots.py).
    ("SGD", "momentums"),
    ("RMSprop", "_momentums"),
    ("Ftrl", "_accumulators"),
    ("Ftrl", "_linears"),
)


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


def owner_classes() -> dict:
    """The Keras classes `INTERNALS` names, for the test that checks them."""
    return {
        "Optimizer": keras.optimizers.Optimizer,
        "Model": keras.Model,
        "Metric": keras.metrics.Metric,
        "ScheduleFreeAdamW": keras.optimizers.ScheduleFreeAdamW,
        "SGD": keras.optimizers.SGD,
        "RMSprop": keras.optimizers.RMSprop,
        "Ftrl": keras.optimizers.Ftrl,
    }


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
