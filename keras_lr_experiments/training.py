"""Training one run of the reproduction and writing its three files.

Under `<out>/<experiment>/<run>/`:
- `config.json` first: what the run is (its `spec`, compared on resume),
  the seed, the data, the model and the serialized optimizer and schedule;
- `history.csv` after training: per epoch loss, accuracy, validation loss
  and accuracy, and the rate the epoch trained at;
- `summary.json` last: final metrics, wall time, versions and hardware.
Every file is written to a temporary name and renamed, so a run
interrupted at any point has no `summary.json`; `is_complete` tells a
finished run from one to redo.
"""

import datetime
import math
import sys
import time
from pathlib import Path

import keras

from keras_lr_experiments import _files
from keras_lr_experiments import environment
from keras_lr_experiments import models
from keras_lr_experiments import optimizers
from keras_lr_experiments.settings import Settings

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule
HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
)


class EpochRecorder(keras.callbacks.Callback):
    """Records each epoch's row of `history.csv` in `rows`."""

    def on_train_begin(self, logs=None):
        self.rows = []

    def on_epoch_begin(self, epoch, logs=None):
        # The annealing drops fall on epoch boundaries, so the rate at the
        # epoch's first step is the epoch's rate. `float()` rather than
        # `np.array()`, which warns on a Keras variable under NumPy 2.
        self._rate = float(self.model.optimizer.learning_rate)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"epoch": epoch + 1, "lr": self._rate}
        for key in HISTORY_COLUMNS[1:-1]:
            row[key] = float(logs.get(key, float("nan")))
        self.rows.append(row)


def run_spec_dict(spec, data, settings: Settings) -> dict:
    """What identifies a run's result; a saved run is reused only if its
    config holds exactly this."""
    return {
        "part": spec.part,
        "experiment": spec.experiment,
        "group": spec.group,
        "optimizer": spec.optimizer,
        "learning_rate": spec.learning_rate,
        "seed": spec.seed,
        "dataset": data.summary(),
        "model": models.MODELS[data.kind],
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
    }


def is_complete(run_dir: Path, spec_dict: dict) -> bool:
    """Whether `run_dir` holds a finished run of exactly `spec_dict`."""
    summary = _files.read_json(run_dir / "summary.json")
    config = _files.read_json(run_dir / "config.json")
    return (
        isinstance(summary, dict)
        and summary.get("complete") is True
        and isinstance(config, dict)
        and config.get("spec") == spec_dict
        and (run_dir / "history.csv").is_file()
    )


def train_run(spec, data, settings: Settings, run_dir: Path) -> dict:
    """Trains one run and writes its three files; returns the summary."""
    spec_dict = run_spec_dict(spec, data, settings)
    # A stale summary must never outlive the run it described.
    (run_dir / "summary.json").unlink(missing_ok=True)
    # Dozens of models in one process: drop the previous ones' graphs.
    keras.backend.clear_session()
    keras.utils.set_random_seed(spec.seed)
    model = models.build_model(data.kind, data.input_shape, data.num_classes)
    per_epoch = optimizers.steps_per_epoch(
        len(data.y_train), settings.batch_size
    )
    learning_rate = optimizers.make_learning_rate(
        spec.optimizer,
        spec.learning_rate,
        epochs=settings.epochs,
        steps_per_epoch=per_epoch,
    )
    optimizer = optimizers.CLASSES[spec.optimizer](learning_rate=learning_rate)
    models.compile_model(model, optimizer)
    config = {
        "spec": spec_dict,
        "seed": spec.seed,
        "label": spec.label,
        "steps_per_epoch": per_epoch,
        "optimizer": _files.json_safe(keras.optimizers.serialize(optimizer)),
        "model_parameters": int(model.count_params()),
    }
    if isinstance(learning_rate, LearningRateSchedule):
        config["schedule"] = _files.json_safe(
            keras.saving.serialize_keras_object(learning_rate)
        )
    _files.write_json(run_dir / "config.json", config)

    recorder = EpochRecorder()
    verbose = 0
    if not settings.quiet:
        verbose = 1 if sys.stdout.isatty() else 2
    start = time.monotonic()
    model.fit(
        data.x_train,
        data.y_train,
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        validation_data=(data.x_val, data.y_val),
        shuffle=True,
        verbose=verbose,
        callbacks=[recorder],
    )
    wall = time.monotonic() - start
    rows = recorder.rows
    _files.write_csv(run_dir / "history.csv", list(HISTORY_COLUMNS), rows)
    last = rows[-1]
    val_acc = [r["val_accuracy"] for r in rows]
    finite = [v for v in val_acc if math.isfinite(v)]
    best = max(finite) if finite else None
    summary = {
        "complete": True,
        "run": spec.name,
        "experiment": spec.experiment,
        "label": spec.label,
        "seed": spec.seed,
        "learning_rate": spec.learning_rate,
        "epochs_run": len(rows),
        "final": {
            key: _files.finite_or_none(last[key]) for key in HISTORY_COLUMNS[1:]
        },
        "best_val_accuracy": best,
        "best_epoch": val_acc.index(best) + 1 if best is not None else None,
        "diverged": not all(math.isfinite(r["loss"]) for r in rows),
        "wall_time_s": round(wall, 3),
        "finished_at": datetime.datetime.now(datetime.timezone.utc)
        .replace(microsecond=0)
        .isoformat(),
        "versions": environment.versions(),
        "hardware": environment.hardware(),
    }
    _files.write_json(run_dir / "summary.json", summary)
    return summary
