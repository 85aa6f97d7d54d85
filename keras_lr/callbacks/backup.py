"""Backups that restore the model, the optimizer and every keras_lr callback."""

import contextlib
import hashlib
import json
import os
import shutil
import warnings

import numpy as np

from keras_lr import _backend
from keras_lr import _checks
from keras_lr import _files
from keras_lr import _keras_internals as internals
from keras_lr import distribute
from keras_lr import snapshot
from keras_lr.callbacks import _stateful
from keras_lr.callbacks._random_streams import RandomStreams
from keras_lr.control import installed_controller
from keras_lr.control import rate_controller

FORMAT = "keras_lr.backup/2"
STATE_FILE = "state.json"
# With `double_checkpoint=True`: the backup before the last one.
PREVIOUS_STATE_FILE = "state.previous.json"


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class BackupAndRestore(_stateful.StateSaver):
    """Backs up the whole training state and restores it after a crash.

    Like `keras.callbacks.BackupAndRestore`, it saves the model's variables
    (seed generators included) and the optimizer's (slots, `iterations`,
    and the rate controller's factor: plateau cuts, the batch-size
    hybrid's decay) and,
    after an interruption, makes the same `fit` call resume from the last
    backup. Unlike it, it also saves the state of every
    keras_lr callback in the same `fit` (plateau counters and best value,
    cycle position, current batch size, logged rates...), so the resumed run
    follows the same learning-rate, momentum and batch-size trajectory as an
    uninterrupted one. Add this one callback, after the keras_lr callbacks
    (it says so if it is not); they are found through the model.

    On PyTorch, Keras' unseeded layers (`Dropout(seed=None)`) and `fit`'s
    data iterators draw from torch's global random generators, not from a
    variable of the model: each backup holds those too (CPU and CUDA), and
    they are put back where the interrupted run was, before the resumed
    epoch for a backup made at an epoch's end, at the first resumed step
    for one made within an epoch. NumPy's global stream, from which
    Keras' JAX `fit` draws each epoch's order of NumPy arrays with
    `shuffle=True`, is kept and put back the same way on every backend,
    so a run resumed from an epoch's end goes on in the same orders.
    TensorFlow's `fit` shuffles inside `tf.data`, whose random state no
    callback can reach: there, with `shuffle=True`, the resumed epochs
    see other orders (a `keras_lr.data` loader's orders come from its
    seed and the epoch, on every backend).

    Every backup is written atomically: the variables' values go to a new
    `.npz` file (by position: a restore checks their count, shapes and
    dtypes against the model), then `state.json` (which names that file
    and its SHA-256) replaces the old one with a single rename. A kill at
    any moment leaves the previous complete backup in place. (For a file
    other tools read, use `keras.callbacks.ModelCheckpoint` beside it.)

    With `save_freq` an integer, a backup is also made every `save_freq`
    batches (written as the next batch starts, so none after an epoch's
    last batch: the end-of-epoch backup, after validation, covers it).
    Keras then restarts the interrupted epoch at batch 0; when the
    training data is a `keras_lr.data` loader, the loader skips the batches
    already trained, so the resumed run sees exactly the remaining batches.
    With other data, the epoch restarts from its first batch (Keras'
    behaviour) from the mid-epoch weights; use `save_freq="epoch"` there
    if exact replay matters.

    Under `tf.distribute.MultiWorkerMirroredStrategy` (one process per
    worker), every worker restores from `backup_dir`, which must then be
    a folder all of them can read (a shared file system). The chief
    (worker 0 without a chief task) writes the backup; every other worker
    writes the same backup to `backup_dir/workertemp_<index>` and removes
    it at once, as `tf.keras` did, so that the workers stay in step.

    Args:
        backup_dir: A string. Folder for the backup (created if missing).
        save_freq: `"epoch"` or a Python int > 0 (batches between backups).
        delete_checkpoint: A bool. Remove the folder when training ends
            normally.
        on_invalid_state: `"raise"` (default) to stop with an error naming
            the file when the backup is unreadable, corrupt or does not
            fit the model, or `"restart"` to warn and train from scratch.
            A backup holding state for callbacks the new `fit` lacks is
            always an error.
        double_checkpoint: A bool, as in Keras' `BackupAndRestore`. Keep
            the backup before the last one too (twice the disk); when the
            last one is unreadable or corrupt, warn and restore the one
            before it instead of applying `on_invalid_state`.

    Example:

    ```python
    model.fit(
        x, y, epochs=10, validation_data=(x_val, y_val),
        callbacks=[
            keras_lr.callbacks.ReduceLROnPlateau(patience=3),
            keras_lr.callbacks.BackupAndRestore("backup"),
        ],
    )
    ```
    """

    def __init__(
        self,
        backup_dir,
        save_freq="epoch",
        delete_checkpoint=True,
        on_invalid_state="raise",
        double_checkpoint=False,
    ):
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)) or not str(
            backup_dir
        ):
            raise ValueError(
                "Argument `backup_dir` must be a non-empty path. "
                f"Received: backup_dir={backup_dir!r}"
            )
        if save_freq != "epoch" and (
            not isinstance(save_freq, int)
            or isinstance(save_freq, bool)
            or save_freq <= 0
        ):
            # Keras' own `BackupAndRestore` raises ValueError here too.
            raise ValueError(
                "Argument `save_freq` must be 'epoch' or a positive integer "
                f"(batches between backups). Received: save_freq={save_freq!r}"
            )
        _checks.check_bool("delete_checkpoint", delete_checkpoint)
        _checks.check_bool("double_checkpoint", double_checkpoint)
        _checks.check_choice(
            "on_invalid_state", on_invalid_state, ("raise", "restart")
        )
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self.on_invalid_state = on_invalid_state
        self.double_checkpoint = double_checkpoint
        self._state_path = os.path.join(self.backup_dir, STATE_FILE)
        self._previous_path = os.path.join(
            self.backup_dir, PREVIOUS_STATE_FILE
        )
        self._epoch = 0
        self._batches_in_epoch = 0
        self._since_save = 0
        self._save_due = False
        self._counter = 0
        self._restored_state = None
        self._streams = RandomStreams()

    # Reading -------------------------------------------------------------

    def _invalid(self, message: str) -> None:
        text = f"Backup state file {self._state_path} {message}"
        if self.on_invalid_state == "raise":
            raise ValueError(
                text + " Delete the folder to start afresh, or pass "
                "on_invalid_state='restart'."
            )
        warnings.warn(text + " Training starts from scratch.", stacklevel=3)

    def _read_state(self) -> dict | None:
        if not os.path.exists(self._state_path):
            return None
        state, problem = self._check_state_file(self._state_path)
        if problem is None:
            return state
        if self.double_checkpoint and os.path.exists(self._previous_path):
            previous, previous_problem = self._check_state_file(
                self._previous_path
            )
            if previous_problem is None:
                warnings.warn(
                    f"Backup state file {self._state_path} {problem} "
                    "Restoring the backup before it, "
                    f"{self._previous_path}.",
                    stacklevel=3,
                )
                return previous
        self._invalid(problem)
        return None

    def _check_state_file(self, state_path) -> tuple[dict | None, str | None]:
        """(the state, None) when `state_path` and the files it names are
        whole, else (None, what is wrong)."""
        try:
            with open(state_path) as file:
                state = json.load(file)
        except (OSError, ValueError) as error:
            return None, f"cannot be read ({error})."
        keys = {"format", "epoch", "batch", "variables_file", "sha256"}
        if not isinstance(state, dict) or not keys <= set(state):
            return None, "is not a keras_lr backup (missing fields)."
        if state["format"] != FORMAT:
            return None, (
                f"has format {state['format']!r}; expected {FORMAT!r}."
            )
        path = os.path.join(self.backup_dir, state["variables_file"])
        if not os.path.exists(path) or _sha256(path) != state["sha256"]:
            return None, (
                f"names variables file {path}, which is missing or "
                "does not match its recorded SHA-256."
            )
        problem = RandomStreams.read(state)
        if problem is not None:
            return None, problem
        arrays_file = state.get("arrays_file")
        if arrays_file is not None:
            path = os.path.join(self.backup_dir, arrays_file)
            if not os.path.exists(path) or _sha256(path) != state.get(
                "arrays_sha256"
            ):
                return None, (
                    f"names snapshot file {path}, which is missing or does "
                    "not match its recorded SHA-256."
                )
            arrays = {}
            with np.load(path) as archive:
                for name in sorted(archive.files):
                    key, part, _ = name.split("/")
                    slot = arrays.setdefault(key, {})
                    slot.setdefault(part, []).append(archive[name])
            state["_arrays"] = arrays
        return state, None

    def set_model(self, model):
        super().set_model(model)
        # Everything is restored now, before any callback's
        # `on_train_begin` (Keras calls `set_model` on every callback
        # first), so that callbacks starting a schedule from
        # `optimizer.iterations` see the restored count, whatever the
        # order of the callback list.
        self._restored_state = self._read_state()
        if self._restored_state is not None:
            _stateful.deposit(
                model,
                self._restored_state.get("callbacks", {}),
                self._restored_state.get("_arrays", {}),
            )
            if model.built:
                self._load_weights(self._restored_state)

    def _load_weights(self, state: dict) -> bool:
        if state.get("_loaded"):
            return True
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        path = os.path.join(self.backup_dir, state["variables_file"])
        if state.get("rate_controller") and installed_controller(
            optimizer
        ) is None:
            # The interrupted run had cut or scaled the rate through the
            # controller: it takes its multiplier back.
            rate_controller(self.model)
        variables = snapshot.training_variables(self.model)
        if not state.get("rate_controller"):
            # Saved before any keras_lr callback installed the controller:
            # its multiplier was 1 and stays as it is.
            controller = installed_controller(optimizer)
            if controller is not None:
                mine = {id(v) for v in controller.state_variables}
                variables = [v for v in variables if id(v) not in mine]
        values = snapshot.load(path)
        mismatch = snapshot.first_mismatch(variables, values, "the file")
        if mismatch is not None:
            self._invalid(
                f"names variables file {path}, which does not fit this "
                f"model: {mismatch}"
            )
            return False
        snapshot.put(variables, values)
        state["_loaded"] = True
        return True

    def on_train_begin(self, logs=None):
        _stateful.check_order(self.model)
        state = self._restored_state
        self._restored_state = None
        self._streams = RandomStreams()
        if state is None:
            self._epoch = 0
            self._batches_in_epoch = 0
            self._counter = 0
            return
        missing = _stateful.unclaimed(self.model)
        if missing:
            # Always an error: the weights are already restored by now, so
            # a quiet fresh start is no longer possible.
            raise ValueError(
                f"Backup state file {self._state_path} holds state for "
                f"callbacks {missing} that this `fit` call does not have. "
                "Pass the same callbacks as the interrupted run, or delete "
                "the folder to start afresh."
            )
        if not self._load_weights(state):
            return
        self._epoch = int(state["epoch"])
        self._batches_in_epoch = int(state["batch"])
        self._counter = int(state.get("counter", 0))
        self._streams.restore(state, self.backup_dir)
        # Keras' own BackupAndRestore resumes `fit` this way too.
        internals.set_initial_epoch(self.model, self._epoch)

    def on_train_batch_begin(self, batch, logs=None):
        self._streams.at_step()
        if self._save_due:
            self._save_due = False
            self._save()

    # Writing -------------------------------------------------------------

    def _write_dir(self) -> str:
        """Where this worker writes: `backup_dir` on the chief (and in one
        process), a temporary folder inside it on the other workers."""
        strategy = _backend.strategy_of(self.model)
        if distribute.is_chief(strategy):
            return self.backup_dir
        return os.path.join(
            self.backup_dir, f"workertemp_{distribute.task_id(strategy)}"
        )

    def _save(self) -> None:
        directory = self._write_dir()
        try:
            self._save_to(directory)
        finally:
            if directory != self.backup_dir:
                shutil.rmtree(directory, ignore_errors=True)

    def _save_to(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self._counter += 1
        name = f"ckpt-{self._counter:06d}.npz"
        final = os.path.join(directory, name)
        # The values of every variable a restore puts back, by position
        # (`np.savez` of host copies: a few milliseconds for a small
        # model, where `model.save_weights`' object walk takes tens).
        snapshot.save(
            final, snapshot.take(snapshot.training_variables(self.model))
        )
        arrays_name = None
        arrays = self._collect_arrays()
        if arrays:
            arrays_name = f"arrays-{self._counter:06d}.npz"
            _files.write_npz(os.path.join(directory, arrays_name), arrays)
        state = {
            "format": FORMAT,
            "epoch": self._epoch,
            "batch": self._batches_in_epoch,
            "counter": self._counter,
            "variables_file": name,
            "rate_controller": installed_controller(self.model.optimizer)
            is not None,
            "sha256": _sha256(final),
            "callbacks": _stateful.collect(self.model),
            "arrays_file": arrays_name,
            "arrays_sha256": (
                None
                if arrays_name is None
                else _sha256(os.path.join(directory, arrays_name))
            ),
        }
        state.update(RandomStreams.to_json())
        state_path = os.path.join(directory, STATE_FILE)
        keep = {name, arrays_name}
        if self.double_checkpoint and os.path.exists(state_path):
            # The last backup becomes the previous one, its files kept. A
            # copy, so that a state file exists at every moment.
            with open(state_path) as file:
                text = file.read()
            previous = json.loads(text)
            with _files.atomic(
                os.path.join(directory, PREVIOUS_STATE_FILE)
            ) as file:
                file.write(text)
            keep |= {previous["variables_file"], previous.get("arrays_file")}
        _files.write_json(state_path, state, indent=None)
        for other in os.listdir(directory):
            if other not in keep and other.startswith(
                ("ckpt-", "arrays-", _files.TEMPORARY_PREFIX)
            ):
                os.remove(os.path.join(directory, other))

    def _collect_arrays(self) -> dict:
        """Rollback snapshots of the callbacks, flattened for `np.savez`."""
        flat = {}
        for key, arrays in _stateful.collect_arrays(self.model).items():
            for part, values in arrays.items():
                for index, value in enumerate(values):
                    flat[f"{key}/{part}/{index:05d}"] = value
        return flat

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._batches_in_epoch = 0
        self._since_save = 0
        self._save_due = False

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        done = batch + 1
        self._since_save += done - self._batches_in_epoch
        self._batches_in_epoch = done
        if self._since_save >= self.save_freq:
            # Written at the next step's start, with the same state. After
            # an epoch's last step none is written: the epoch's end (its
            # validation, the callbacks' epoch-end work) has not happened,
            # yet the data has moved to the next epoch, so a run resumed
            # from there would train an epoch too many. The end-of-epoch
            # backup follows instead.
            self._since_save = 0
            self._save_due = True

    def on_epoch_end(self, epoch, logs=None):
        self._epoch = epoch + 1
        self._batches_in_epoch = 0
        self._since_save = 0
        self._save_due = False
        self._save()

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        directory = self._write_dir()
        if directory != self.backup_dir:
            # Another worker removes its temporary folder; the chief owns
            # the backup.
            shutil.rmtree(directory, ignore_errors=True)
        elif self.delete_checkpoint and os.path.isdir(self.backup_dir):
            # Only the chief's own files: another worker may be creating
            # or removing its temporary folder meanwhile.
            for name in os.listdir(self.backup_dir):
                if not name.startswith("workertemp_"):
                    os.remove(os.path.join(self.backup_dir, name))
        if self.delete_checkpoint and os.path.isdir(self.backup_dir):
            # Whichever process ends last removes the emptied folder (a
            # worker's temporary folder may outlive the chief's files).
            with contextlib.suppress(OSError):
                os.rmdir(self.backup_dir)
