"""Per-experiment results: a markdown table and the article's figures.

The table gives, per configuration, the mean and the sample standard
deviation over seeds of the final-epoch metrics. The figures show the
mean curve per configuration with a band from the lowest to the highest
seed, for training and validation loss and accuracy.
"""

from pathlib import Path

import numpy as np

from keras_lr_experiments import _files

METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")
TITLES = {
    "loss": "training loss",
    "val_loss": "validation loss",
    "accuracy": "training accuracy",
    "val_accuracy": "validation accuracy",
}


def group_runs(entries) -> dict:
    """{group: [(spec, summary), ...]} in plan order."""
    groups = {}
    for spec, summary in entries:
        groups.setdefault(spec.group, []).append((spec, summary))
    return groups


def curves(experiment_dir: Path, runs) -> dict:
    """{metric: array (seeds, epochs)} read back from the history files."""
    histories = [
        _files.read_csv(experiment_dir / spec.name / "history.csv")
        for spec, _ in runs
    ]
    return {
        metric: np.array(
            [[float(row[metric]) for row in rows] for rows in histories]
        )
        for metric in METRICS + ("lr",)
    }


def mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype="float64")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), std


def _cell(values, digits: int = 3) -> str:
    values = np.asarray(values, dtype="float64")
    if not np.all(np.isfinite(values)):
        return "diverged (nan)"
    mean, std = mean_std(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _rate_text(spec, settings) -> str:
    if spec.optimizer == "sgd_annealing":
        rate = spec.learning_rate
        return f"{rate:.3g} → {rate / 10:.3g} → {rate / 100:.3g}"
    return f"{spec.learning_rate:.3g}"


def table_rows(experiment_dir: Path, entries, settings) -> list[dict]:
    rows = []
    for group, runs in group_runs(entries).items():
        spec = runs[0][0]
        data = curves(experiment_dir, runs)
        row = {
            "group": group,
            "label": spec.label,
            "rate": _rate_text(spec, settings),
            "seeds": [s.seed for s, _ in runs],
            "wall": [summary["wall_time_s"] for _, summary in runs],
        }
        for metric in METRICS:
            row[metric] = data[metric][:, -1]
        row["best_val_accuracy"] = np.nanmax(data["val_accuracy"], axis=1)
        rows.append(row)
    return rows


def markdown_table(rows, title: str, note: str) -> str:
    lines = [
        f"# {title}",
        "",
        note,
        "",
        "| configuration | learning rate | seeds | val accuracy | val loss "
        "| train accuracy | train loss | best val accuracy | s per run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ordered = sorted(
        rows,
        key=lambda r: -np.nan_to_num(np.mean(r["val_accuracy"]), nan=-1.0),
    )
    for row in ordered:
        lines.append(
            f"| {row['label']} | {row['rate']} | "
            f"{', '.join(str(s) for s in row['seeds'])} | "
            f"{_cell(row['val_accuracy'])} | {_cell(row['val_loss'])} | "
            f"{_cell(row['accuracy'])} | {_cell(row['loss'])} | "
            f"{_cell(row['best_val_accuracy'])} | "
            f"{_cell(row['wall'], 1)} |"
        )
    lines += [
        "",
        "Rows sorted by mean final validation accuracy. Cells: mean ± sample"
        " standard deviation over the seeds (the mean alone for one seed), "
        "at the last epoch (best val accuracy: the best epoch of each seed).",
        "",
    ]
    return "\n".join(lines)


def plot_curves(path: Path, experiment_dir: Path, entries, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    panels = {
        "loss": axes[0, 0],
        "val_loss": axes[0, 1],
        "accuracy": axes[1, 0],
        "val_accuracy": axes[1, 1],
    }
    for index, (_, runs) in enumerate(group_runs(entries).items()):
        spec = runs[0][0]
        data = curves(experiment_dir, runs)
        color = f"C{index}"
        label = spec.label
        if spec.part != "lr":
            label += f" (lr {spec.learning_rate:.3g})"
        for metric, axis in panels.items():
            values = data[metric]
            epochs = np.arange(1, values.shape[1] + 1)
            with np.errstate(invalid="ignore"):
                axis.plot(
                    epochs, np.mean(values, axis=0), color=color, label=label
                )
                axis.fill_between(
                    epochs,
                    np.min(values, axis=0),
                    np.max(values, axis=0),
                    color=color,
                    alpha=0.2,
                    linewidth=0,
                )
    for metric, axis in panels.items():
        axis.set_title(TITLES[metric])
        axis.grid(alpha=0.3)
        if "loss" in metric:
            axis.set_yscale("log")
        else:
            axis.set_ylim(0, 1)
    from matplotlib.ticker import MaxNLocator

    for axis in axes[1]:
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].legend(fontsize=8)
    figure.suptitle(f"{title}\nline: mean over seeds; band: min to max")
    _files.save_figure(figure, path)
    plt.close(figure)


def experiment_title(experiment: str, entries) -> tuple[str, str]:
    part = entries[0][0].part
    seeds = sorted({spec.seed for spec, _ in entries})
    if part == "lr":
        return (
            f"{experiment}: Adam at three learning rates",
            f"Adam at LR 0.1, 0.01 and 0.001; seeds {seeds}.",
        )
    if part == "optimizers":
        return (
            f"{experiment}: five approaches, all at LR 0.001",
            "Keras default settings, everyone at LR 0.001 as in the article "
            "(this favours Adam by construction: Keras's SGD default is "
            f"0.01, Adadelta was designed for 1.0); seeds {seeds}.",
        )
    return (
        f"{experiment}: five approaches, each at the LR the race chose",
        "Each optimizer at the rate `keras_lr.choose_learning_rate` chose "
        "for it on a fresh model (a range test, then a race of candidates "
        "across its bracket scored on a held-out fifth of the training "
        "data; not the range test's valley reading); seeds "
        f"{seeds}. Each race's JSON and plot in range_tests/.",
    )


def write_experiment_report(experiment_dir: Path, entries, data, settings):
    """Writes `results.md` and `curves.png` for one experiment."""
    experiment = Path(experiment_dir).name
    title, note = experiment_title(experiment, entries)
    note += (
        f" Data: {data.description}. {settings.epochs} epochs, batch size "
        f"{settings.batch_size}."
    )
    rows = table_rows(experiment_dir, entries, settings)
    _files.write_text(
        Path(experiment_dir) / "results.md", markdown_table(rows, title, note)
    )
    plot_curves(
        Path(experiment_dir) / "curves.png", experiment_dir, entries, title
    )
