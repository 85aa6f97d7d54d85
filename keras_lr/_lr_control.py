"""Reading and replacing an optimizer's learning rate from a callback.

Keras keeps the rate in `optimizer._learning_rate`: a variable for a float
rate, or a `LearningRateSchedule`. Its public setter refuses to replace a
schedule and untracks the variable when a schedule replaces it, which
changes the order of `optimizer.variables` and so breaks loading a saved
optimizer. Callbacks that must drive the rate in-graph (range test, cyclic
and one-cycle callbacks, plateau cuts on top of a schedule) therefore swap
the object directly, here and nowhere else, and keep the variable tracked.
"""

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


def set_learning_rate_object(model, learning_rate, rebuild=True) -> None:
    """Makes `model.optimizer` read its rate from `learning_rate`.

    The compiled train function captured the previous object when it was
    traced, so it is rebuilt (once) when one exists, unless `rebuild` is
    False: the caller then installs a train function of its own.
    """
    optimizer = base_optimizer(model.optimizer)
    wrapper = _transparent_wrapper(optimizer)
    if wrapper is not None:
        wrapper.inner_learning_rate = learning_rate
    else:
        optimizer._learning_rate = learning_rate
    if rebuild and getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)


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
