"""What the plateau and divergence callbacks share: reading the monitored
value, resuming, and the rollback snapshot that `BackupAndRestore` saves."""

from keras_lr import _checks
from keras_lr.callbacks import _rules
from keras_lr.callbacks._stateful import StatefulCallback
from keras_lr.control import rate_controller


class _RollbackCallback(StatefulCallback):
    """State handling shared by the plateau and divergence callbacks."""

    drives_rate = True

    def __init__(self, monitor, verbose):
        super().__init__()
        self._monitored = _rules.MonitoredValue(type(self).__name__, monitor)
        _checks.check_non_negative_int("verbose", verbose)
        self.monitor = monitor
        self.verbose = verbose
        self._controller = None
        self._resuming = False

    def _value(self, logs):
        return self._monitored.read(logs)

    def _say(self, message: str) -> None:
        if self.verbose > 0:
            _rules.say(message)

    def on_train_begin(self, logs=None):
        self._monitored.reset()
        self._controller = rate_controller(self.model)
        if self._resuming:
            # The rate's factor is restored with the optimizer (it lives
            # in the rate controller), not here.
            self._resuming = False
            return
        self._reset()

    def _reset(self) -> None:
        raise NotImplementedError

    def _state(self) -> dict:
        raise NotImplementedError

    def _load(self, state: dict) -> None:
        raise NotImplementedError

    # Name of the attribute holding the rollback `Snapshot` (or None).
    _snapshot_attribute = None

    def get_arrays(self) -> dict | None:
        """The rollback snapshot's arrays, for `BackupAndRestore`."""
        snapshot = getattr(self, self._snapshot_attribute)
        return None if snapshot is None else snapshot.to_arrays()

    def set_arrays(self, arrays: dict | None) -> None:
        setattr(
            self,
            self._snapshot_attribute,
            None if arrays is None else _rules.Snapshot.from_arrays(arrays),
        )

    def get_state(self) -> dict:
        """Counters and best value, JSON-native.

        The weight snapshot used for rolling back is not part of it:
        `get_arrays()` hands it out, and `BackupAndRestore` saves it. The
        rate's factor is not either: the optimizer carries it.
        """
        return self._state()

    def set_state(self, state: dict) -> None:
        """Takes a state back; the next `fit` resumes instead of resetting."""
        self._load(state)
        self._resuming = True
