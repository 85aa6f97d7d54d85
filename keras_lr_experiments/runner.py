"""Runs the reproduction: every planned run, resumably, then the reports.

`reproduce` plans the runs of the chosen parts (`plan`), runs part
`fair`'s races first (`range_test.run_race`: each optimizer's rate by
`keras_lr.choose_learning_rate`), trains each run not already
complete (`training`), prints one progress line per task (`progress`)
and writes each experiment's table and plots (`report`). Rerunning the
same call skips every run whose `summary.json` is complete and whose
spec matches, and every race whose JSON matches; the others are
redone.
"""

import dataclasses
import time

from keras_lr_experiments import _files
from keras_lr_experiments import plan
from keras_lr_experiments import range_test
from keras_lr_experiments import report
from keras_lr_experiments import training
from keras_lr_experiments.progress import Progress
from keras_lr_experiments.settings import Settings


def _fmt(value) -> str:
    return "nan" if value is None else f"{value:.4f}"


def _races(data, settings: Settings, progress: Progress) -> dict:
    """Part `fair`'s rate per optimizer, chosen by the race:
    {optimizer: rate}."""
    picked = {}
    folder = (
        settings.out / plan.experiment_name(data.name, "fair")
    ) / "range_tests"
    for optimizer in settings.optimizers:
        progress.begin(f"race {plan.LABELS[optimizer]}")
        saved = _files.read_json(folder / f"{optimizer}.json")
        spec = range_test.race_spec(optimizer, data, settings)
        if isinstance(saved, dict) and saved.get("spec") == spec:
            picked[optimizer] = float(saved["suggestion"])
            progress.end(
                skipped=True,
                note=f"done before: lr={picked[optimizer]:.3g}",
            )
            continue
        record = range_test.run_race(
            optimizer, data, settings, folder, optimizer
        )
        picked[optimizer] = record["suggestion"]
        note = f"the race chose lr={picked[optimizer]:.3g}"
        for message in record["warnings"]:
            note += f"\n    race warning: {message}"
        progress.end(note=note)
    return picked


def reproduce(data, settings: Settings, stream=None) -> dict:
    """Runs every planned run not already complete, then writes each
    experiment's table and plots. Returns {experiment: [(spec, summary)]}.
    """
    fair = "fair" in settings.parts
    if fair:
        # Fail before anything is written.
        range_test.choose_learning_rate_function()
    _files.check_writable(settings.out)
    runs = plan.make_plan(
        data.name, settings.parts, settings.seeds, settings.optimizers
    )
    range_tests = len(settings.optimizers) if fair else 0
    progress = Progress(len(runs) + range_tests, stream=stream)
    picked = _races(data, settings, progress) if fair else {}

    results = {}
    for spec in runs:
        if spec.part == "fair":
            spec = dataclasses.replace(
                spec, learning_rate=picked[spec.optimizer]
            )
        run_dir = settings.out / spec.experiment / spec.name
        spec_dict = training.run_spec_dict(spec, data, settings)
        title = f"{spec.experiment}/{spec.name}"
        if spec.part != "lr":
            title += f" ({spec.label}, lr={spec.learning_rate:.3g})"
        progress.begin(title)
        if training.is_complete(run_dir, spec_dict):
            summary = _files.read_json(run_dir / "summary.json")
            progress.end(skipped=True, note="complete before: skipped")
        else:
            summary = training.train_run(spec, data, settings, run_dir)
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
    progress.write(
        f"done: {len(runs)} runs in {Progress.clock(total)}; results in "
        f"{settings.out}"
    )
    return results
