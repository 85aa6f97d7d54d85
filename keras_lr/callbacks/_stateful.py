"""How keras_lr callbacks keep their state, and how a backup finds them.

The protocol is two classes, and nothing else is asked of a callback:

- `StatefulCallback`: a callback whose state a backup saves. It hands the
  state out (`get_state`, JSON-native; `get_arrays`, large arrays such as
  a rollback point) and takes it back (`set_state`, `set_arrays`) before
  `on_train_begin`, which then resumes instead of resetting.
- `StateSaver`: a callback that saves and restores the others' states
  (`keras_lr.callbacks.BackupAndRestore`, and through it Ray Tune's
  `ReportAndCheckpoint`).

A callback cannot see its siblings in `fit`'s callback list, so both kinds
attach themselves to the model's `keras_lr._model_state.ModelRecord` in
`set_model` (Keras calls it on every callback before any
`on_train_begin`), in list order. A saver deposits restored states there;
whichever comes first, each callback receives its state before training
begins. `check_order` holds the one rule on the order of the list.

A callback's key is its class name and its rank among callbacks of the
same class on the same model (`"ReduceLROnPlateau"`, `"CyclicLR#1"`), so
the same command line gives the same keys after a restart.
"""

import weakref

import keras

from keras_lr._model_state import record


class StatefulCallback(keras.callbacks.Callback):
    """Base of callbacks whose state `keras_lr.callbacks.BackupAndRestore`
    saves and restores.

    Subclasses implement `get_state()` (a JSON-native dict) and
    `set_state(state)`; a `set_state` received before `on_train_begin`
    means the run is resuming, so `on_train_begin` must not reset then.
    Large arrays (a rollback point) go through `get_arrays()` and
    `set_arrays(arrays)`, saved beside the state as `.npz`.

    Example:

    ```python
    class CountEpochs(keras_lr.callbacks.StatefulCallback):
        def __init__(self):
            super().__init__()
            self.epochs, self._resuming = 0, False

        def on_train_begin(self, logs=None):
            if not self._resuming:
                self.epochs = 0
            self._resuming = False

        def on_epoch_end(self, epoch, logs=None):
            self.epochs += 1

        def get_state(self):
            return {"epochs": self.epochs}

        def set_state(self, state):
            self.epochs, self._resuming = state["epochs"], True
    ```
    """

    # A callback that drives the rate installs the rate controller in
    # `set_model`, before any `on_train_begin`, so that a backup (after it
    # in the list) finds the controller's variables when it restores.
    drives_rate = False

    def set_model(self, model):
        super().set_model(model)
        attach(model, self)
        if self.drives_rate and getattr(model, "optimizer", None) is not None:
            from keras_lr.control import rate_controller

            rate_controller(model)

    def get_state(self) -> dict:
        """The callback's state, JSON-native."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `get_state()`."
        )

    def set_state(self, state: dict) -> None:
        """Takes a state from `get_state()` back; the next `fit` resumes."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `set_state(state)`."
        )

    def get_arrays(self) -> dict | None:
        """Large arrays saved beside the state: `{part: [arrays]}`, or
        `None` (the default: the state says everything)."""
        return None

    def set_arrays(self, arrays: dict | None) -> None:
        """Takes arrays from `get_arrays()` back (the default has none)."""
        if arrays:
            raise ValueError(
                f"{type(self).__name__} keeps no arrays. Received arrays "
                f"for parts {sorted(arrays)}"
            )

    def data_state(self) -> dict | None:
        """The state of the data the callback drives (a batch-size
        loader's), for reports; `None` when it drives none."""
        return None

    def on_train_end(self, logs=None):
        detach(self.model, self)


class StateSaver(keras.callbacks.Callback):
    """Base of the callbacks that save and restore the other keras_lr
    callbacks' states (`keras_lr.callbacks.BackupAndRestore`)."""

    def set_model(self, model):
        super().set_model(model)
        attach(model, self)

    def on_train_end(self, logs=None):
        detach(self.model, self)


def _attached(model) -> list:
    alive = (ref() for ref in record(model).callbacks)
    return [callback for callback in alive if callback is not None]


def stateful(model) -> list[StatefulCallback]:
    """The stateful callbacks attached to `model`, in list order."""
    return [c for c in _attached(model) if isinstance(c, StatefulCallback)]


def key_of(model, callback) -> str:
    same = [c for c in stateful(model) if type(c) is type(callback)]
    rank = next(i for i, c in enumerate(same) if c is callback)
    name = type(callback).__name__
    return name if rank == 0 else f"{name}#{rank}"


def attach(model, callback) -> None:
    """Attaches `callback` to `model`; hands a stateful one the state a
    saver deposited for it, if any."""
    refs = record(model).callbacks
    if not any(ref() is callback for ref in refs):
        refs.append(weakref.ref(callback))
    pending = record(model).pending
    if pending and isinstance(callback, StatefulCallback):
        key = key_of(model, callback)
        if key in pending:
            _hand_over(callback, *pending.pop(key))


def detach(model, callback) -> None:
    refs = record(model).callbacks
    refs[:] = [ref for ref in refs if ref() not in (None, callback)]


def check_order(model) -> None:
    """The one rule on the order of `callbacks`: a saver comes after every
    stateful callback, whose state it writes at epoch end (one after it
    would not have updated its state for the epoch yet).

    Raises:
        ValueError: naming the callbacks attached after a saver.
    """
    attached = _attached(model)
    for index, saver in enumerate(attached):
        if not isinstance(saver, StateSaver):
            continue
        later = [
            c for c in attached[index + 1 :] if isinstance(c, StatefulCallback)
        ]
        if later:
            names = ", ".join(type(c).__name__ for c in later)
            raise ValueError(
                f"keras_lr.callbacks.{type(saver).__name__} must come after "
                "the keras_lr callbacks whose state it saves in the "
                f"`callbacks` list. Received it before: {names}"
            )


def items(model) -> list[tuple[str, StatefulCallback]]:
    """(key, callback) for every attached stateful callback."""
    return [(key_of(model, c), c) for c in stateful(model)]


def collect(model) -> dict[str, dict]:
    """The state of every attached stateful callback, by key."""
    return {key: c.get_state() for key, c in items(model)}


def collect_arrays(model) -> dict[str, dict]:
    """The arrays of every attached stateful callback that keeps some."""
    arrays = {}
    for key, callback in items(model):
        held = callback.get_arrays()
        if held is not None:
            arrays[key] = held
    return arrays


def _hand_over(callback, state: dict, arrays: dict | None) -> None:
    callback.set_state(state)
    if arrays is not None:
        callback.set_arrays(arrays)


def deposit(
    model, states: dict[str, dict], arrays: dict[str, dict] | None = None
) -> None:
    """Gives each attached callback its state (and arrays); keeps the rest
    until their callbacks attach."""
    arrays = arrays or {}
    remaining = {key: (state, arrays.get(key)) for key, state in states.items()}
    for key, callback in items(model):
        if key in remaining:
            _hand_over(callback, *remaining.pop(key))
    record(model).pending = remaining


def unclaimed(model) -> list[str]:
    """Keys of deposited states that no callback has taken."""
    return sorted(record(model).pending)
