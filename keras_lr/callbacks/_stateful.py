"""How `BackupAndRestore` finds the keras_lr callbacks of a run.

A callback cannot see its siblings in `fit`'s callback list, and the order
of the list is the user's. Stateful keras_lr callbacks therefore register
with the model they are attached to (in `set_model`, which Keras calls on
every callback before any `on_train_begin`), and `BackupAndRestore`
deposits the restored states here. Whichever comes first, each callback
receives its state through `set_state` before training begins.

A callback's key is its class name and its rank among callbacks of the
same class on the same model (`"ReduceLROnPlateau"`, `"CyclicLR#1"`), so
the same command line gives the same keys after a restart.
"""

import weakref

import keras

from keras_lr._model_state import record


def _alive(model, stateful_only: bool = True) -> list:
    alive = [ref() for ref in record(model).callbacks]
    return [
        callback
        for callback in alive
        if callback is not None
        and (not stateful_only or hasattr(callback, "get_state"))
    ]


def registered_after(model, callback) -> list:
    """Stateful callbacks attached after `callback` (later in the list)."""
    everyone = _alive(model, stateful_only=False)
    index = next(i for i, c in enumerate(everyone) if c is callback)
    return [c for c in everyone[index + 1 :] if hasattr(c, "get_state")]


def key_of(model, callback) -> str:
    same = [c for c in _alive(model) if type(c) is type(callback)]
    rank = next(i for i, c in enumerate(same) if c is callback)
    name = type(callback).__name__
    return name if rank == 0 else f"{name}#{rank}"


def register(model, callback) -> None:
    """Attaches `callback` to `model`; hands it a pending state if any."""
    refs = record(model).callbacks
    if not any(ref() is callback for ref in refs):
        refs.append(weakref.ref(callback))
    pending = record(model).pending
    if pending and hasattr(callback, "get_state"):
        key = key_of(model, callback)
        if key in pending:
            _hand_over(callback, *pending.pop(key))


def unregister(model, callback) -> None:
    refs = record(model).callbacks
    refs[:] = [ref for ref in refs if ref() not in (None, callback)]


def registered_items(model) -> list[tuple[str, object]]:
    """(key, callback) for every registered stateful callback."""
    return [(key_of(model, c), c) for c in _alive(model)]


def collect(model) -> dict[str, dict]:
    """The state of every registered callback, by key."""
    return {key_of(model, c): c.get_state() for c in _alive(model)}


def _hand_over(callback, state: dict, arrays: dict | None) -> None:
    callback.set_state(state)
    if arrays is not None:
        callback.set_arrays(arrays)


def deposit(
    model, states: dict[str, dict], arrays: dict[str, dict] | None = None
) -> None:
    """Gives each registered callback its state (and its rollback arrays,
    through `set_arrays`); keeps the rest pending."""
    arrays = arrays or {}
    remaining = {key: (state, arrays.get(key)) for key, state in states.items()}
    for callback in _alive(model):
        key = key_of(model, callback)
        if key in remaining:
            _hand_over(callback, *remaining.pop(key))
    record(model).pending = remaining


def unclaimed(model) -> list[str]:
    """Keys of deposited states that no callback has taken."""
    return sorted(record(model).pending)


class StatefulCallback(keras.callbacks.Callback):
    """Base of keras_lr callbacks whose state `BackupAndRestore` saves.

    It registers the callback with its model (see the module docstring).
    Subclasses implement `get_state()` (JSON-native dict) and
    `set_state(state)`; a `set_state` received before `on_train_begin`
    means the run is resuming, so `on_train_begin` must not reset then.
    """

    # A callback that drives the rate installs the rate controller here,
    # before any `on_train_begin`, so that `BackupAndRestore` (after it in
    # the list) finds the controller's variables when it restores.
    drives_rate = False

    def set_model(self, model):
        super().set_model(model)
        register(model, self)
        if self.drives_rate and getattr(model, "optimizer", None) is not None:
            from keras_lr.control import rate_controller

            rate_controller(model)

    def get_state(self) -> dict:
        raise NotImplementedError(
            f"{type(self).__name__} must implement `get_state()`."
        )

    def set_state(self, state: dict) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} must implement `set_state(state)`."
        )

    def on_train_end(self, logs=None):
        unregister(self.model, self)
