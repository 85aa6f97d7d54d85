"""What keras_lr keeps about a model between callbacks and `fit` calls.

keras_lr objects that must find each other through a model (a backup
finding the callbacks whose state it saves, a schedule-free swap knowing
which point a previous `fit` left the weights at, the range test finding
the function it traced last time) read one `ModelRecord`, kept here per
model and dropped with the model. Nothing is hung on Keras objects under
hidden attribute names, and each field says what it holds.

The rate controller is the one exception, by design: it lives in the
optimizer's rate slot, where the traced train function reads it, and its
variables are saved with the optimizer (see `keras_lr.control`).
"""

import dataclasses
import weakref


@dataclasses.dataclass
class ModelRecord:
    """Everything keras_lr keeps about one model.

    Attributes:
        callbacks: Weak references to the keras_lr callbacks attached to
            the model (`keras_lr.callbacks.StatefulCallback`s and the
            backups), in the order `fit` attached them.
        pending: States restored from a backup that no callback has taken
            yet, by callback key: `(state, arrays)`.
        holds_averaged: Whether the weights hold a schedule-free
            optimizer's averaged point `x` (else the training point `y`).
        range_test: The range test's traced function and record, reused
            by the next range test on the model (or `None`).
    """

    callbacks: list = dataclasses.field(default_factory=list)
    pending: dict = dataclasses.field(default_factory=dict)
    holds_averaged: bool = False
    range_test: object = None


_records: "weakref.WeakKeyDictionary[object, ModelRecord]" = (
    weakref.WeakKeyDictionary()
)


def record(model) -> ModelRecord:
    """The `ModelRecord` of `model`, made on first use."""
    found = _records.get(model)
    if found is None:
        found = _records[model] = ModelRecord()
    return found


def sync_known_models() -> None:
    """On JAX, writes the state each `fit` in progress carries back into
    the variables of every model keras_lr keeps a record of, so that a
    copy taken or put back between steps sees and sets the values
    training uses (nothing to do on other backends, or between epochs)."""
    from keras_lr import _keras_internals

    for model in list(_records.keys()):
        _keras_internals.sync_train_state(model)
