"""The tables of docs/studies/choose.md, from part `choose`'s summary.json.

    PYTHONPATH=$PWD python benchmarks/choose_tables.py \\
        saved_runs/choose/summary.json

Prints, in markdown: final test loss per way and workload with its rank
and the mean rank; the test metric; steps to the target; the rates each
way chose, per seed.
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_lr_experiments.choose.ways import WAYS as EVERY_WAY  # noqa: E402

# The nine equal-budget ways, in the app's order (the grid is the
# reference, shown last).
WAYS = tuple(way for way in EVERY_WAY if way != "grid")
# The workloads in the order the study shows them.
ORDER = ("digits_mlp", "digits_cnn", "digits_gru", "tabular", "regression")
RATES = (
    ("valley", "valley"),
    ("race", "race"),
    ("pbt", "PBT's best final trial"),
    ("asha", "ASHA's"),
)


def mean_ranks(workloads) -> dict:
    return {
        way: sum(w["ways"][way]["rank"] for w in workloads.values())
        / len(workloads)
        for way in WAYS
    }


def loss_table(workloads) -> list[str]:
    names = list(workloads)
    ranks = mean_ranks(workloads)
    lines = [
        "| way | " + " | ".join(names) + " | mean rank |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for way in WAYS + ("grid",):
        cells = []
        for name in names:
            row = workloads[name]["ways"][way]
            cell = f"{row['test_loss_mean']:.3f} ± {row['test_loss_std']:.3f}"
            if way != "grid":
                cell += f" ({row['rank']})"
                if row["rank"] == 1:
                    cell = f"**{cell}**"
            cells.append(cell)
        last = "ref (19x)" if way == "grid" else f"{ranks[way]:.1f}"
        lines.append(f"| `{way}` | " + " | ".join(cells) + f" | {last} |")
    return lines


def metric_table(workloads) -> list[str]:
    names = list(workloads)
    lines = [
        "| way | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for way in WAYS + ("grid",):
        cells = []
        for name in names:
            w = workloads[name]
            value = w["ways"][way][f"test_{w['metric']}_mean"]
            cells.append(
                f"{value:.1f}" if w["metric"] == "rmse" else f"{value:.3f}"
            )
        lines.append(f"| `{way}` | " + " | ".join(cells) + " |")
    return lines


def target_table(workloads) -> list[str]:
    names = list(workloads)
    head = [f"{n} ({workloads[n]['target_test_loss']:.4f})" for n in names]
    lines = [
        "| way | " + " | ".join(head) + " |",
        "|---|" + "---|" * len(names),
    ]
    for way in WAYS + ("grid",):
        cells = []
        for name in names:
            row = workloads[name]["ways"][way]
            median = row["steps_to_target_median"]
            seeds = len(row["steps_to_target"])
            cells.append(
                f"{'-' if median is None else round(median)} "
                f"[{row['reached']}/{seeds}]"
            )
        lines.append(f"| `{way}` | " + " | ".join(cells) + " |")
    return lines


def rate_lines(workloads) -> list[str]:
    lines = []
    for name, w in workloads.items():
        parts = [
            f"{label} "
            + ", ".join(f"{r:.3g}" for r in w["ways"][way]["learning_rate"])
            for way, label in RATES
        ]
        parts.append(f"grid {w['ways']['grid']['learning_rate'][0]:.3g}")
        lines.append(f"- `{name}`: " + "; ".join(parts))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", help="part choose's summary.json")
    args = parser.parse_args()
    with open(args.summary) as f:
        every = json.load(f)["workloads"]
    workloads = {n: every[n] for n in ORDER if n in every}
    for lines in (
        loss_table(workloads),
        metric_table(workloads),
        target_table(workloads),
        rate_lines(workloads),
    ):
        print("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
