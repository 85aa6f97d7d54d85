"""Runs the reproduction: trains every planned run, resumably.

Each run writes, under `<out>/<experiment>/<run>/`:
- `config.json` first: what the run is (its `spec`, compared on resume),
  the seed, the data, the model and the serialized optimizer and schedule;
- `history.csv` after training: per epoch loss, accuracy, validation loss
  and accuracy, and the rate the epoch trained at;
- `summary.json` last: final metrics, wall time, versions and hardware.
Every file is written to a temporary name and renamed, so a run
interrupted at any point has no `summary.json` and is redone on the next
call; a run whose summary is complete and whose spec matches is skipped.
"""

import dataclasses
import datetime
import importlib.metadata
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

from keras_lr.experiments import _files
from keras_lr.experiments import plan as plan_lib
from keras_lr.experiments.errors import UsageError
from keras_lr.experiments.optimizers import OPTIMIZERS

HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
)
# The range test of part `fair`: the range test's own defaults (an
# exponential sweep from 1e-7 to 10 in 100 steps, "valley" rule) on a
# fresh model, repeated 3 times with reshuffled data because one sweep's
# valley moves by up to 10x between shuffles; the pick is the geometric
# mean of the repeats.
RANGE_TEST = {
    "start_lr": 1e-7,
    "end_lr": 10.0,
    "num_steps": 100,
    "repeats": 3,
    "method": "valley",
}


@dataclasses.dataclass
class Settings:
    """Everything `reproduce` needs besides the data.

    Attributes:
        dataset: A string, the data set name (`Dataset.name`).
        epochs, batch_size: Ints.
        seeds: A list of ints, one run per seed per configuration.
        out: A `Path`, the results folder.
        parts: The parts to run, among `plan.PARTS`.
        optimizers: The optimizers of parts `optimizers` and `fair`.
        range_test_steps: An int, the steps of each range test.
        range_test_start_lr, range_test_end_lr: Floats, its rate range.
        range_test_repeats: An int, sweeps per range test.
        quiet: A bool: no per-epoch Keras output.
    """

    dataset: str = "digits"
    epochs: int = 20
    batch_size: int = 32
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0, 1, 2])
    out: Path = Path("saved_runs")
    parts: list[str] = dataclasses.field(
        default_factory=lambda: list(plan_lib.PARTS)
    )
    optimizers: list[str] = dataclasses.field(
        default_factory=lambda: list(OPTIMIZERS)
    )
    range_test_steps: int = RANGE_TEST["num_steps"]
    range_test_start_lr: float = RANGE_TEST["start_lr"]
    range_test_end_lr: float = RANGE_TEST["end_lr"]
    range_test_repeats: int = RANGE_TEST["repeats"]
    quiet: bool = False


def find_learning_rate_function():
    """`keras_lr.find_learning_rate`, or a `UsageError` if this build
    lacks it (part `fair` and `keras-lr find` need it)."""
    import keras_lr

    function = getattr(keras_lr, "find_learning_rate", None)
    if function is None:
        raise UsageError(
            "Part `fair` and `keras-lr find` need the LR range test "
            "(keras_lr.find_learning_rate), which this build of keras_lr "
            "does not have; run --parts lr optimizers"
        )
    return function


def versions() -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_lr

    found = {
        "python": platform.python_version(),
        "keras_lr": keras_lr.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    for package in ("scikit-learn", "matplotlib", "tensorflow-datasets"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def hardware() -> dict:
    import tensorflow as tf

    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        # The machine may be shared: the load average puts the wall
        # times in context.
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _json_safe(value):
    """Turns NumPy values and non-finite floats into JSON-native ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return _json_safe(value.tolist())
    if isinstance(value, float):
        return _finite_or_none(value)
    return value


def _fmt(value) -> str:
    return "nan" if value is None else f"{value:.4f}"


class Progress:
    """One line per task: position, elapsed time and time left.

    The estimate is the mean time of the tasks done so far in this call
    (skipped ones excluded) times the tasks left.
    """

    def __init__(self, total: int, stream=None):
        self.total = total
        self.done = 0
        self.worked = 0
        self.work_seconds = 0.0
        self.start = time.monotonic()
        self.stream = stream if stream is not None else sys.stdout

    @staticmethod
    def _clock(seconds: float) -> str:
        seconds = int(round(seconds))
        return (
            f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        )

    def begin(self, what: str) -> None:
        elapsed = time.monotonic() - self.start
        left = self.total - self.done
        if self.worked:
            eta = self._clock(self.work_seconds / self.worked * left)
        else:
            eta = "?"
        print(
            f"[{self.done + 1}/{self.total} | elapsed {self._clock(elapsed)}"
            f" | left ~{eta}] {what}",
            file=self.stream,
            flush=True,
        )
        self._task_start = time.monotonic()

    def end(self, skipped: bool = False, note: str = "") -> None:
        self.done += 1
        seconds = time.monotonic() - self._task_start
        if not skipped:
            self.worked += 1
            self.work_seconds += seconds
        if note:
            print(f"    {note}", file=self.stream, flush=True)


class _EpochRecorder:
    """Builds the Keras callback that records each epoch's row."""

    @staticmethod
    def make():
        import keras

        from keras_lr._lr_control import current_learning_rate

        class EpochRecorder(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.rows = []

            def on_epoch_begin(self, epoch, logs=None):
                # The annealing drops fall on epoch boundaries, so the
                # rate at the epoch's first step is the epoch's rate.
                self._rate = current_learning_rate(self.model.optimizer)

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                row = {"epoch": epoch + 1, "lr": self._rate}
                for key in HISTORY_COLUMNS[1:-1]:
                    row[key] = float(logs.get(key, float("nan")))
                self.rows.append(row)

        return EpochRecorder()


def run_spec_dict(spec, data, settings: Settings) -> dict:
    """What identifies a run's result; a saved run is reused only if its
    config holds exactly this."""
    from keras_lr.experiments.models import MODELS

    return {
        "part": spec.part,
        "experiment": spec.experiment,
        "group": spec.group,
        "optimizer": spec.optimizer,
        "learning_rate": spec.learning_rate,
        "seed": spec.seed,
        "dataset": data.summary(),
        "model": MODELS[data.kind],
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
    }


def is_complete(run_dir: Path, spec_dict: dict) -> bool:
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
    import keras

    from keras_lr.experiments import models
    from keras_lr.experiments import optimizers

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
    optimizer = optimizers.make_optimizer(
        spec.optimizer,
        spec.learning_rate,
        epochs=settings.epochs,
        steps_per_epoch=per_epoch,
    )
    models.compile_model(model, optimizer)
    config = {
        "spec": spec_dict,
        "seed": spec.seed,
        "label": spec.label,
        "steps_per_epoch": per_epoch,
        "optimizer": _json_safe(keras.optimizers.serialize(optimizer)),
        "model_parameters": int(model.count_params()),
    }
    if spec.optimizer == "sgd_annealing":
        config["schedule"] = _json_safe(
            keras.saving.serialize_keras_object(
                optimizer._learning_rate  # the schedule given above
            )
        )
    _files.write_json(run_dir / "config.json", config)

    recorder = _EpochRecorder.make()
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
            key: _finite_or_none(last[key]) for key in HISTORY_COLUMNS[1:]
        },
        "best_val_accuracy": best,
        "best_epoch": val_acc.index(best) + 1 if best is not None else None,
        "diverged": not all(math.isfinite(r["loss"]) for r in rows),
        "wall_time_s": round(wall, 3),
        "finished_at": datetime.datetime.now(datetime.timezone.utc)
        .replace(microsecond=0)
        .isoformat(),
        "versions": versions(),
        "hardware": hardware(),
    }
    _files.write_json(run_dir / "summary.json", summary)
    return summary


def range_test_spec(optimizer: str, data, settings: Settings) -> dict:
    from keras_lr.experiments.models import MODELS

    return {
        "optimizer": optimizer,
        "dataset": data.summary(),
        "model": MODELS[data.kind],
        "batch_size": settings.batch_size,
        "seed": settings.seeds[0],
        "start_lr": settings.range_test_start_lr,
        "end_lr": settings.range_test_end_lr,
        "num_steps": settings.range_test_steps,
        "repeats": settings.range_test_repeats,
        "method": RANGE_TEST["method"],
    }


def run_range_test(
    optimizer: str, data, settings: Settings, folder: Path, basename: str
) -> dict:
    """Runs the range test for `optimizer` on a fresh model; writes
    `<basename>.json` (numbers and the picked rate) and `<basename>.png`
    (the curve) in `folder`; returns the JSON's content."""
    import keras
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_lr.experiments import models
    from keras_lr.experiments import optimizers

    find_learning_rate = find_learning_rate_function()
    spec = range_test_spec(optimizer, data, settings)
    keras.backend.clear_session()
    keras.utils.set_random_seed(spec["seed"])
    model = models.build_model(data.kind, data.input_shape, data.num_classes)
    # SGD's annealing is a schedule over the whole run; the range test
    # sweeps plain SGD and the pick becomes the schedule's first value.
    models.compile_model(
        model,
        optimizers.make_optimizer(optimizer, 1e-3, schedule=False),
    )
    # The range test warns about curves it cannot trust; keep the words
    # with the result (and show them) rather than lose them in a log.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = find_learning_rate(
            model,
            data.x_train,
            data.y_train,
            batch_size=settings.batch_size,
            start_lr=spec["start_lr"],
            end_lr=spec["end_lr"],
            num_steps=spec["num_steps"],
            repeats=spec["repeats"],
            seed=spec["seed"],
            verbose=0,
        )
        try:
            picked = float(result.suggestion(method=spec["method"]))
        except ValueError as error:
            raise RuntimeError(
                f"The range test for {optimizer} gave no "
                f"{spec['method']!r} suggestion: {error}"
            ) from None
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    if not (math.isfinite(picked) and picked > 0):
        raise RuntimeError(
            f"The range test for {optimizer} suggested no usable rate "
            f"(got {picked!r}); see {folder / (basename + '.png')}"
        )
    record = {
        "spec": spec,
        "suggestion": picked,
        "warnings": messages,
        "range_test": _json_safe(result.to_dict()),
    }
    figure, axes = plt.subplots(figsize=(6, 4))
    result.plot(ax=axes)
    axes.set_title(
        f"{plan_lib.LABELS[optimizer]}: range test picks {picked:.3g}"
    )
    _files.save_figure(figure, folder / f"{basename}.png")
    plt.close(figure)
    _files.write_json(folder / f"{basename}.json", record)
    return record


def reproduce(data, settings: Settings, stream=None) -> dict:
    """Runs every planned run not already complete, then writes each
    experiment's table and plots. Returns {experiment: [(spec, summary)]}.
    """
    from keras_lr.experiments import report

    if "fair" in settings.parts:
        find_learning_rate_function()  # fail before anything is written
    _files.check_writable(settings.out)
    runs = plan_lib.make_plan(
        data.name, settings.parts, settings.seeds, settings.optimizers
    )
    fair = "fair" in settings.parts
    range_tests = len(settings.optimizers) if fair else 0
    progress = Progress(len(runs) + range_tests, stream=stream)

    picked = {}
    if fair:
        folder = (
            settings.out / plan_lib.experiment_name(data.name, "fair")
        ) / "range_tests"
        for optimizer in settings.optimizers:
            progress.begin(f"range test {plan_lib.LABELS[optimizer]}")
            saved = _files.read_json(folder / f"{optimizer}.json")
            spec = range_test_spec(optimizer, data, settings)
            if isinstance(saved, dict) and saved.get("spec") == spec:
                picked[optimizer] = float(saved["suggestion"])
                progress.end(
                    skipped=True,
                    note=f"done before: lr={picked[optimizer]:.3g}",
                )
                continue
            record = run_range_test(
                optimizer, data, settings, folder, optimizer
            )
            picked[optimizer] = record["suggestion"]
            note = f"picked lr={picked[optimizer]:.3g}"
            for message in record["warnings"]:
                note += f"\n    range test warning: {message}"
            progress.end(note=note)

    results = {}
    for spec in runs:
        if spec.part == "fair":
            spec = dataclasses.replace(
                spec, learning_rate=picked[spec.optimizer]
            )
        run_dir = settings.out / spec.experiment / spec.name
        spec_dict = run_spec_dict(spec, data, settings)
        title = f"{spec.experiment}/{spec.name}"
        if spec.part != "lr":
            title += f" ({spec.label}, lr={spec.learning_rate:.3g})"
        progress.begin(title)
        if is_complete(run_dir, spec_dict):
            summary = _files.read_json(run_dir / "summary.json")
            progress.end(skipped=True, note="complete before: skipped")
        else:
            summary = train_run(spec, data, settings, run_dir)
            final = summary["final"]
            progress.end(
                note=(
                    f"val_accuracy={_fmt(final['val_accuracy'])} "
                    f"val_loss={_fmt(final['val_loss'])} "
                    f"({summary['wall_time_s']:.1f} s)"
                )
            )
        results.setdefault(spec.experiment, []).append((spec, summary))

    for experiment, entries in results.items():
        report.write_experiment_report(
            settings.out / experiment, entries, data, settings
        )
    total = time.monotonic() - progress.start
    print(
        f"done: {len(runs)} runs in {Progress._clock(total)}; results in "
        f"{settings.out}",
        file=progress.stream,
        flush=True,
    )
    return results
