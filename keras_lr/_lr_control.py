"""Reading and replacing an optimizer's learning rate from a callback.

Keras keeps the rate in `optimizer._learning_rate`: a variable for a float
rate, or a `LearningRateSchedule`. Its public setter refuses to replace a
schedule and untracks the variable when a schedule replaces it, which
changes the order of `optimizer.variables` and so breaks loading a saved
optimizer. Callbacks that must drive the rate in-graph (range test, cyclic
and one-cycle callbacks, plateau cuts on top of a schedule) therefore swap
the object directly, here and nowhere else, and keep the variable tracked.
"""

import weakref

import keras

from keras_lr.schedules.scaled import ScaledSchedule

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


def base_optimizer(optimizer):
    """The optimizer that owns the rate (unwraps `LossScaleOptimizer`)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def _transparent_wrapper(optimizer):
    """A wrapper that only observes the rate (the per-step rate logger).

    Such a wrapper has an `inner_learning_rate` attribute; everything here
    reads and replaces what it wraps, so callbacks compose in any order.
    """
    held = base_optimizer(optimizer)._learning_rate
    return held if hasattr(held, "inner_learning_rate") else None


def get_learning_rate_object(optimizer):
    """The variable or schedule the optimizer reads its rate from."""
    wrapper = _transparent_wrapper(optimizer)
    if wrapper is not None:
        return wrapper.inner_learning_rate
    return base_optimizer(optimizer)._learning_rate


def set_learning_rate_object(model, learning_rate) -> None:
    """Makes `model.optimizer` read its rate from `learning_rate`.

    The compiled train function captured the previous object when it was
    traced, so it is rebuilt (once) when one exists.

    While a schedule replaces the optimizer's own rate variable, the
    variable is set aside from `optimizer.variables` (a model saved then
    has a schedule in its config and no rate variable, exactly what
    loading it rebuilds); when the variable is put back it returns to its
    original position, so the order of the optimizer's variables, and so
    saved files, are as if it had never left.
    """
    optimizer = base_optimizer(model.optimizer)
    previous = get_learning_rate_object(optimizer)
    if isinstance(previous, keras.Variable) and not isinstance(
        learning_rate, keras.Variable
    ):
        _set_aside(optimizer, previous)
    elif isinstance(learning_rate, keras.Variable):
        _put_back(optimizer, learning_rate)
    wrapper = _transparent_wrapper(optimizer)
    if wrapper is not None:
        wrapper.inner_learning_rate = learning_rate
    else:
        optimizer._learning_rate = learning_rate
    if getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)


# optimizer -> (its rate variable, its index in `optimizer.variables`).
_SET_ASIDE = weakref.WeakKeyDictionary()


def _set_aside(optimizer, variable) -> None:
    variables = optimizer._variables
    for index, candidate in enumerate(variables):
        if candidate is variable:
            # Keras' `_untrack_variable` only removes what its tracker
            # recorded, which is not always the rate variable.
            del variables[index]
            optimizer._tracker.stored_ids["variables"].discard(id(variable))
            # Not an attribute: the optimizer would track the variable
            # again through it.
            _SET_ASIDE[optimizer] = (variable, index)
            return


def _put_back(optimizer, variable) -> None:
    set_aside = _SET_ASIDE.get(optimizer)
    if set_aside is None or set_aside[0] is not variable:
        return
    index = set_aside[1]
    optimizer._variables.insert(index, variable)
    optimizer._tracker.stored_ids["variables"].add(id(variable))
    del _SET_ASIDE[optimizer]


def current_learning_rate(optimizer) -> float:
    """The rate the next optimizer step will use, as a Python float."""
    value = base_optimizer(optimizer).learning_rate
    # Variables and eager tensors both have `.numpy()`; `np.array()` on a
    # Keras variable warns under NumPy 2.
    return float(value.numpy())


def has_schedule(optimizer) -> bool:
    return isinstance(get_learning_rate_object(optimizer), LearningRateSchedule)


def make_scalable(model) -> ScaledSchedule | None:
    """Wraps a scheduled rate in a `ScaledSchedule` so it can be multiplied.

    Returns the `ScaledSchedule` (the existing one if already wrapped), or
    `None` when the rate is a plain variable (multiply it in place).
    """
    current = get_learning_rate_object(model.optimizer)
    if isinstance(current, ScaledSchedule):
        return current
    if isinstance(current, LearningRateSchedule):
        wrapped = ScaledSchedule(current, scale=1.0)
        set_learning_rate_object(model, wrapped)
        return wrapped
    return None


def multiply_learning_rate(model, factor: float) -> float:
    """Multiplies the rate from the next step on; returns the new rate.

    A plain rate is multiplied in its variable; a schedule is wrapped once
    in a `ScaledSchedule` whose factor is multiplied.
    """
    scaled = make_scalable(model)
    if scaled is None:
        variable = get_learning_rate_object(model.optimizer)
        variable.assign(variable * factor)
    else:
        scaled.scale = scaled.scale * factor
    return current_learning_rate(model.optimizer)
