"""`ReportAndCheckpoint`: every epoch to Ray Tune, with the whole state."""

import json
import os
import shutil
import tempfile
import threading

import ray.tune

from keras_lr import _backend
from keras_lr import _checks
from keras_lr.callbacks import _stateful
from keras_lr.callbacks.backup import BackupAndRestore
from keras_lr.control import rate_controller
from keras_lr.tune import folders
from keras_lr.tune.checkpoint import CHECKPOINT_FORMAT
from keras_lr.tune.checkpoint import META_FILE
from keras_lr.tune.checkpoint import TrialCheckpoint
from keras_lr.tune.checkpoint import json_safe
from keras_lr.tune.checkpoint import model_fingerprint
from keras_lr.tune.checkpoint import read_checkpoint
from keras_lr.tune.checkpoint import restore_trial
from keras_lr.tune.errors import CheckpointMismatchError


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


class ReportAndCheckpoint(BackupAndRestore):
    """Reports each epoch to Ray Tune with a checkpoint of the whole state.

    A `keras_lr.callbacks.BackupAndRestore` whose every epoch-end backup
    is also handed to `ray.tune.report` as the checkpoint, with the
    epoch's logs as metrics. At the start of `fit` it restores the trial
    from `ray.tune.get_checkpoint()`: the weights, the optimizer
    (`iterations`, slots, the rate controller's factor), every keras_lr
    callback's state (schedule position, plateau counters, batch size,
    loader position) and the epoch. When the checkpoint was made with
    another learning rate (a PBT exploit), the next step runs at the
    checkpoint's rate times `new / old`, set through the rate
    controller's multiplier, over any schedule. Put it last in the
    `callbacks` list, as `BackupAndRestore`.

    Reports reach Ray from a background thread, one at a time and in
    order, while the next epoch trains: Ray's `report` copies the
    checkpoint to the run's storage and then waits for the Tune loop,
    which a trial need not idle for. The next epoch's end, and the end of
    `fit`, wait for the report in flight and raise what it raised (when
    Tune stops or pauses the trial, Ray's `SystemExit`), so a trial that
    Tune stops trains at most one epoch more, whose report is dropped.

    A trial that dies (SIGKILL, a lost node) and that Ray restarts goes
    on from the last checkpoint Ray registered, in the state it was taken
    in. Ray registers a checkpoint after its result: the driver logs the
    result, then fetches the checkpoint from the trial in a second round
    trip, while the next epoch trains. A death in between restarts the
    trial from the checkpoint before, as it would a Tune function that
    reports without a thread (blocked in `report` meanwhile): that epoch
    is trained and reported again from the same state, and the history
    says so, Ray's `training_iteration` going back to the restored
    checkpoint's and `restored_from_epoch` set to its epoch. With
    `checkpoint_frequency=1` at most the epoch in progress and the one
    before are trained again; each epoch's last report is the one the
    trial went on from.

    Besides the logs, each report holds `epoch` (epochs completed),
    `iterations`, `learning_rate` (the rate of the next step),
    `lr_multiplier`, and what this `fit` started from:
    `start_iterations`, `start_learning_rate`, `start_state` (JSON: the
    keras_lr callbacks' states and their loaders' own) and
    `restored_from_trial` / `restored_from_epoch` (`""` / -1 on a fresh
    start).

    Args:
        hyperparameters: A dict, the trial's config.
        learning_rate_key: A string, the key of `hyperparameters` holding
            the rate the trial explores (default `"learning_rate"`), or
            `None` when the rate is not explored.
        backup_dir: A string, the local folder of the backup (default: a
            new temporary folder). Removed when `fit` ends.
        restore: A bool. Restore from `ray.tune.get_checkpoint()` in
            `set_model` (default `True`); `False` when the Tune function
            calls `restore_trial(backup_dir)` itself. (Ray's
            `get_checkpoint()` is the trial's latest checkpoint, so a
            second `fit` in one trial with `restore=True` resumes the
            first.)
        checkpoint_frequency: A Python int > 0. Checkpoint every this
            many epochs and at the last one (default 1: every epoch);
            metrics are reported every epoch. Above 1 the cost is spread
            over more epochs, but a trial restarted after a failure
            trains (and reports) again the epochs since its last
            checkpoint; PBT exploits at its last checkpoint, so make
            `perturbation_interval` a multiple of it.

    Raises:
        ValueError: if `learning_rate_key` is not in `hyperparameters` or
            its value is not a finite number > 0.
        CheckpointMismatchError: at the start of `fit`, for a checkpoint
            from a model with other weight shapes, or one made without the
            learning rate under `learning_rate_key`.

    Example:

    ```python
    import os

    import ray.tune

    import keras_lr.tune

    def train(config):
        model = make_model()
        schedule = keras_lr.schedules.CosineDecay(
            0.0, 40, warmup_target=config["learning_rate"], warmup_steps=8)
        model.compile(keras.optimizers.Adam(schedule), "mse")
        model.fit(
            x, y, epochs=4, validation_data=(x_val, y_val), verbose=0,
            callbacks=[
                keras_lr.callbacks.ReduceLROnPlateau(patience=3),
                keras_lr.tune.ReportAndCheckpoint(config),
            ],
        )

    pbt = ray.tune.schedulers.PopulationBasedTraining(
        time_attr="epoch", metric="val_loss", mode="min",
        perturbation_interval=2,
        hyperparam_mutations={"learning_rate": ray.tune.loguniform(1e-4, 0.1)},
    )
    results = ray.tune.Tuner(
        train,
        param_space={"learning_rate": ray.tune.loguniform(1e-4, 0.1)},
        tune_config=ray.tune.TuneConfig(
            scheduler=pbt, num_samples=2, reuse_actors=True
        ),
        run_config=ray.tune.RunConfig(storage_path=os.path.abspath("ray")),
    ).fit()
    if results.errors:
        raise results.errors[0]
    print(results.get_best_result("val_loss", "min").metrics["val_loss"])
    ```
    """

    def __init__(
        self,
        hyperparameters,
        learning_rate_key="learning_rate",
        backup_dir=None,
        restore=True,
        checkpoint_frequency=1,
    ):
        if not isinstance(hyperparameters, dict):
            raise TypeError(
                "Argument `hyperparameters` must be a dict (the trial's "
                "config). Received: hyperparameters of type "
                f"{type(hyperparameters).__name__}"
            )
        if learning_rate_key is not None:
            if learning_rate_key not in hyperparameters:
                raise ValueError(
                    "Argument `learning_rate_key` must be a key of "
                    f"`hyperparameters` ({sorted(hyperparameters)}). "
                    f"Received: learning_rate_key={learning_rate_key!r}"
                )
            _checks.check_positive(
                f"hyperparameters[{learning_rate_key!r}]",
                hyperparameters[learning_rate_key],
            )
        _checks.check_bool("restore", restore)
        _checks.check_positive_int("checkpoint_frequency", checkpoint_frequency)
        owns_folder = backup_dir is None
        if owns_folder:
            backup_dir = os.path.join(folders.trial_folder(self), "backup")
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=True)
        self.hyperparameters = dict(hyperparameters)
        self.learning_rate_key = learning_rate_key
        self.restore = restore
        self.checkpoint_frequency = checkpoint_frequency
        self.restored: TrialCheckpoint | None = None
        self._restore_done = not restore
        self._owns_parent = owns_folder
        self._start = {}
        self._reporter = None
        self._report_error = None

    # Restoring -----------------------------------------------------------

    def set_model(self, model):
        if getattr(model, "optimizer", None) is not None:
            # The factor's variable must exist before the optimizer's
            # variables are read back from the backup.
            rate_controller(model)
        if not self._restore_done:
            self._restore_done = True
            self.restored = restore_trial(self.backup_dir)
        elif self.restored is None and os.path.exists(
            os.path.join(self.backup_dir, META_FILE)
        ):
            # `restore_trial(backup_dir)` was called by the Tune function.
            self.restored = read_checkpoint(self.backup_dir)
        if self.restored is not None and model.built:
            self._check_model(model)
        super().set_model(model)

    def _check_model(self, model) -> None:
        mine = model_fingerprint(model)
        theirs = self.restored.model
        if mine["weights"] == theirs["weights"]:
            return
        raise CheckpointMismatchError(
            f"Checkpoint {self.restored.path} (trial "
            f"{self.restored.trial_id}, epoch {self.restored.epoch}) was "
            f"written by model {theirs['name']!r} with weight shapes "
            f"{theirs['weights']}; expected this trial's model "
            f"{mine['name']!r} with weight shapes {mine['weights']}. A "
            "checkpoint from another model cannot continue this trial."
        )

    def on_train_begin(self, logs=None):
        # A report left in flight by a `fit` that ended in an exception
        # belongs to that `fit`: wait for it, and drop what it raised.
        if self._reporter is not None:
            self._reporter.join()
        self._reporter, self._report_error = None, None
        if self.restored is not None:
            self._check_model(self.model)
        super().on_train_begin(logs)
        controller = rate_controller(self.model)
        restored = self.restored
        if restored is not None and self.learning_rate_key is not None:
            self._apply_rate(controller, restored, self.learning_rate_key)
        self._start = {
            "start_iterations": self._optimizer_step(),
            "start_learning_rate": controller.current(),
            "start_state": json.dumps(self._state_now(), sort_keys=True),
            "restored_from_trial": (
                "" if restored is None else str(restored.trial_id)
            ),
            "restored_from_epoch": -1 if restored is None else restored.epoch,
        }

    def _state_now(self) -> dict:
        """The keras_lr callbacks' states, and each loader's own.

        A batch-size callback derives its loader's state from the steps
        trained in the current epoch, which only `on_epoch_begin` sets;
        the loader's own `get_state()` is what it will serve next.
        """
        loaders = {}
        for key, callback in _stateful.items(self.model):
            data = callback.data_state()
            if data is not None:
                loaders[key] = data
        return {"callbacks": _stateful.collect(self.model), "loaders": loaders}

    def _apply_rate(self, controller, restored, key) -> None:
        """Sets the next step's rate to the checkpoint's times new / old.

        From the rate itself, not from its parts: the Tune function may
        build its optimizer from the new config (a schedule peaking at
        the new rate) or from a fixed base, and a float rate comes back
        from the weights as the donor's. Either way the next step runs at
        the donor's rate times the explored change, and the multiplier
        keeps that ratio over the rest of the schedule.
        """
        old = restored.hyperparameters.get(key)
        if restored.learning_rate_key != key or not _checks.is_real(old):
            raise CheckpointMismatchError(
                f"Checkpoint {restored.path} holds no learning rate under "
                f"{key!r}: it was made with learning_rate_key="
                f"{restored.learning_rate_key!r} and hyperparameters "
                f"{restored.hyperparameters}."
            )
        target = restored.learning_rate * (
            float(self.hyperparameters[key]) / float(old)
        )
        now = controller.current()
        if now > 0 and now != target:
            controller.multiply(target / now)

    # Reporting -----------------------------------------------------------

    def _optimizer_step(self) -> int:
        return int(_backend.to_numpy(self.model.optimizer.iterations))

    def _metrics(self, epoch: int, logs) -> dict:
        metrics = {}
        for name, value in (logs or {}).items():
            if _checks.is_real(value) or hasattr(value, "numpy"):
                metrics[name] = float(value)
        controller = rate_controller(self.model)
        metrics.update(
            epoch=epoch + 1,
            iterations=self._optimizer_step(),
            learning_rate=controller.current(),
            lr_multiplier=controller.multiplier,
            **self._start,
        )
        return metrics

    def _meta(self, metrics: dict) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "hyperparameters": json_safe(self.hyperparameters),
            "learning_rate_key": self.learning_rate_key,
            "model": model_fingerprint(self.model),
            "epoch": metrics["epoch"],
            "iterations": metrics["iterations"],
            "learning_rate": metrics["learning_rate"],
            "trial_id": ray.tune.get_context().get_trial_id(),
        }

    def on_epoch_end(self, epoch, logs=None):
        # The previous epoch's report first: its errors surface here, and
        # reports reach Ray one at a time, in order.
        self._finish_report()
        last = epoch + 1 == (self.params or {}).get("epochs")
        if (epoch + 1) % self.checkpoint_frequency and not last:
            self._send(self._metrics(epoch, logs), None)
            return
        # The backup first, so that the checkpoint is this epoch's.
        super().on_epoch_end(epoch, logs)
        metrics = self._metrics(epoch, logs)
        parent = os.path.dirname(os.path.abspath(self.backup_dir))
        folder = tempfile.mkdtemp(prefix="checkpoint-", dir=parent)
        try:
            for name in os.listdir(self.backup_dir):
                path = os.path.join(self.backup_dir, name)
                # Not Ray's own files, nor a write in progress.
                if os.path.isfile(path) and not name.startswith(("tmp-", ".")):
                    _link_or_copy(path, os.path.join(folder, name))
            with open(os.path.join(folder, META_FILE), "w") as file:
                json.dump(self._meta(metrics), file)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._send(metrics, folder)

    def _send(self, metrics: dict, folder: str | None) -> None:
        """Hands one report to Ray from a thread, so that training goes on
        meanwhile.

        A Tune function's `report` copies the checkpoint to the run's
        storage and then waits until the Tune loop asks for the next
        result: milliseconds per epoch that the trial need not idle for.
        The checkpoint folder holds links to this epoch's backup files,
        so the next backup cannot change it; it is removed once Ray has
        copied it.
        """

        def report():
            try:
                checkpoint = (
                    None
                    if folder is None
                    else ray.tune.Checkpoint.from_directory(folder)
                )
                ray.tune.report(metrics, checkpoint=checkpoint)
            except BaseException as error:  # noqa: BLE001 - re-raised in fit
                # `SystemExit` included: Ray's way of stopping the trial.
                self._report_error = error
            finally:
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)

        self._reporter = threading.Thread(
            target=report, name="keras_lr.tune report", daemon=True
        )
        self._reporter.start()

    def _finish_report(self) -> None:
        """Waits for the report in flight; raises what it raised (Ray
        stops a trial with `SystemExit` from `report`)."""
        reporter, self._reporter = self._reporter, None
        if reporter is None:
            return
        reporter.join()
        error, self._report_error = self._report_error, None
        if error is not None:
            raise error

    def on_train_end(self, logs=None):
        # The last epoch's report reaches Ray before `fit` returns.
        self._finish_report()
        super().on_train_end(logs)
        if self._owns_parent:
            shutil.rmtree(os.path.dirname(self.backup_dir), ignore_errors=True)
