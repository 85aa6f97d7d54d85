"""The figures of part `choose`.

- `performance_profile.png`: AlgoPerf's performance profile. For each
  way, the fraction of workloads on which it reached the target within
  `tau` times the steps of the fastest way on that workload (median over
  the seeds, every step counted, search included), against `tau`. Higher
  and further left is better; a way that never reaches the target on a
  workload never counts it.
- `curves.png`: per workload, each way's test loss (mean over the seeds)
  against the steps spent, search included, with the target as a dashed
  line. Only the first `budget` steps of the grid are in view: it costs
  19 times as much.
"""

import numpy as np

from keras_lr_experiments import _files
from keras_lr_experiments.choose import ways

COLORS = {
    "keras_default": "#1f77b4",
    "article_adam": "#aec7e8",
    "valley": "#ff7f0e",
    "valley_one_cycle": "#ffbb78",
    "race": "#2ca02c",
    "race_wsd": "#98df8a",
    "pbt": "#d62728",
    "asha": "#ff9896",
    "schedule_free": "#9467bd",
    "grid": "#7f7f7f",
}
STYLES = {"grid": "--", "article_adam": "-.", "asha": "-."}


def write_figures(out, loaded, document: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    summary = document["workloads"]
    _profile(plt, out, summary)
    budget = document["budget"]
    _curves(plt, out, summary, budget["steps"], budget["grid_rates"])


def _profile(plt, out, summary) -> None:
    figure, axis = plt.subplots(figsize=(10, 5))
    finite = [
        row["profile_ratio"]
        for entry in summary.values()
        for row in entry["ways"].values()
        if row.get("profile_ratio") is not None
    ]
    # Far enough right for every finite ratio (the grid's are large).
    right = max([4.0] + [1.2 * r for r in finite])
    taus = np.logspace(0, np.log10(right), 600)
    count = len(summary)
    for way in ways.WAYS:
        ratios = []
        present = False
        for entry in summary.values():
            row = entry["ways"].get(way, {})
            present = present or "seeds" in row
            ratio = row.get("profile_ratio")
            ratios.append(np.inf if ratio is None else ratio)
        if not present:
            continue
        ratios = np.array(ratios)
        fraction = [(ratios <= t).sum() / count for t in taus]
        axis.step(
            taus,
            fraction,
            where="post",
            label=ways.LABELS[way],
            color=COLORS[way],
            linestyle=STYLES.get(way, "-"),
            linewidth=2,
        )
    axis.set_xscale("log")
    axis.set_xlim(1, right)
    axis.set_ylim(-0.02, 1.02)
    axis.set_xlabel(
        "tau: steps to the target / the fastest way's (search included)"
    )
    axis.set_ylabel(f"fraction of the {count} workloads")
    axis.set_title("Performance profile (AlgoPerf): reaching the target")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    _files.save_figure(figure, out / "performance_profile.png")
    plt.close(figure)


def _curves(plt, out, summary, steps: int, grid_rates: int) -> None:
    names = list(summary)
    columns = 3
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(5 * columns, 3.8 * rows), squeeze=False
    )
    for axis, name in zip(axes.flat, names):
        entry = summary[name]
        for way in ways.WAYS:
            row = entry["ways"].get(way, {})
            curve = row.get("curve_mean")
            if not curve:
                continue
            x = [p[0] for p in curve if p[1] is not None]
            y = [p[1] for p in curve if p[1] is not None]
            if way == "grid":
                # One rate's steps (it trains `grid_rates` of them).
                x = [v / grid_rates for v in x]
            axis.plot(
                x,
                y,
                label=ways.LABELS[way],
                color=COLORS[way],
                linestyle=STYLES.get(way, "-"),
                linewidth=1.6,
            )
        target = entry["target_test_loss"]
        if target is not None:
            axis.axhline(target, color="black", linestyle=":", linewidth=1)
        axis.set_xlim(0, steps)
        axis.set_yscale("log")
        axis.set_title(name)
        axis.set_xlabel("steps spent, search included")
        axis.set_ylabel("test loss (mean over seeds)")
        axis.grid(True, alpha=0.3)
    for axis in list(axes.flat)[len(names) :]:
        axis.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower right", fontsize=9, ncol=1)
    figure.suptitle(
        "Test loss against steps spent (dotted: the target, the grid's "
        "best x 1.1; grid: one rate's steps)"
    )
    figure.tight_layout()
    _files.save_figure(figure, out / "curves.png")
    plt.close(figure)
