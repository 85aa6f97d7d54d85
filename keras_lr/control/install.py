"""Finding an optimizer's `RateController`, installing it on first use."""

from keras_lr import _keras_internals as internals
from keras_lr import _model_state
from keras_lr.control.controller import RateController


def rate_controller(model) -> RateController:
    """The `RateController` of `model.optimizer`, installed on first use.

    Installing puts it under the optimizer's rate (the traced train
    function, if any, is rebuilt once); later calls return the same
    object.
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError(
            "Argument `model` must be compiled with an optimizer (call "
            "`model.compile(optimizer=..., loss=...)` first). Received: "
            f"model={getattr(model, 'name', model)!r} without an optimizer"
        )
    held = internals.rate_slot(model.optimizer)
    if isinstance(held, RateController):
        held.serve(model)
        return held
    controller = RateController(model)
    _model_state.record(model)  # known to `keras_lr.snapshot` on JAX
    internals.set_rate_slot(model.optimizer, controller)
    internals.retrace(model)
    return controller


def installed_controller(optimizer) -> RateController | None:
    """The optimizer's controller if one is installed, else `None`."""
    held = internals.rate_slot(optimizer)
    return held if isinstance(held, RateController) else None
