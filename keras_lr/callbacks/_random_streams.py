"""The random streams `fit` draws from outside a model's variables, as
`BackupAndRestore` keeps and puts them back: NumPy's global stream (Keras'
JAX `fit` draws each epoch's shuffle order of NumPy arrays from it) and,
on PyTorch, torch's generators (its `fit` draws from them when it makes
an epoch's data iterator, and unseeded layers at every step).
"""

import warnings

from keras_lr import _backend
from keras_lr import snapshot


class RandomStreams:
    """One resumed `fit`'s streams to put back (`restore`, `at_step`)."""

    def __init__(self):
        # From a backup made within an epoch: put back at the first
        # resumed step (see `restore`).
        self._numpy_at_step = None
        self._torch_at_step = None

    @staticmethod
    def to_json() -> dict:
        """The entries a backup's state file holds for the streams."""
        entries = {"numpy_random_state": snapshot.numpy_random_state_to_json()}
        torch_state = snapshot.random_state_to_json(snapshot.random_state())
        if torch_state is not None:
            entries["random_state"] = torch_state
        return entries

    @staticmethod
    def read(state: dict) -> str | None:
        """Decodes the streams of a state file into `state` (under
        `_numpy_random_state`, `_random_state`); what is wrong, or
        `None`."""
        try:
            if "numpy_random_state" in state:
                state["_numpy_random_state"] = (
                    snapshot.numpy_random_state_from_json(
                        state["numpy_random_state"]
                    )
                )
            if _backend.name() == "torch" and "random_state" in state:
                state["_random_state"] = snapshot.random_state_from_json(
                    state["random_state"]
                )
        except ValueError as error:
            return f"holds an unreadable random state: {error}"
        return None

    def restore(self, state: dict, backup_dir: str) -> None:
        """Puts the streams back as the backup found them.

        A backup made at an epoch's end is put back now, so that the
        resumed epoch makes its iterator from the same state as the
        interrupted run did. Within an epoch, Keras restarts the epoch and
        makes a new iterator, a draw the interrupted run did not make
        there: that backup is put back at the first resumed step, after
        it (`at_step`).
        """
        at_epoch_start = int(state["batch"]) == 0
        numpy_state = state.get("_numpy_random_state")
        if numpy_state is not None:
            if at_epoch_start:
                snapshot.set_numpy_random_state(numpy_state)
            else:
                self._numpy_at_step = numpy_state
        if _backend.name() != "torch":
            return
        states = state.get("_random_state")
        if states is None:
            warnings.warn(
                f"The backup in {backup_dir} holds no state of torch's "
                "random generators (written before keras_lr saved them, or "
                "on another backend): training resumes, but unseeded layers "
                "(`Dropout(seed=None)`) draw other numbers than the "
                "interrupted run would have.",
                stacklevel=4,
            )
            return
        devices = len(snapshot.random_state()) - 1
        if devices > len(states) - 1:
            warnings.warn(
                f"The backup in {backup_dir} holds the random state of "
                f"{len(states) - 1} CUDA devices; this process has "
                f"{devices}: the others keep their own.",
                stacklevel=4,
            )
        if at_epoch_start:
            snapshot.set_random_state(states)
        else:
            self._torch_at_step = states

    def at_step(self) -> None:
        """At each step's start: puts back what `restore` left for the
        first resumed step."""
        if self._numpy_at_step is not None:
            snapshot.set_numpy_random_state(self._numpy_at_step)
            self._numpy_at_step = None
        if self._torch_at_step is not None:
            snapshot.set_random_state(self._torch_at_step)
            self._torch_at_step = None
