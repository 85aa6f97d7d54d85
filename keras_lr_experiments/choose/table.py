"""The table of part `choose`: per workload and way, over the seeds.

For each workload, the target is AlgoPerf's kind: the grid reference's
final test loss (the grid's rate with the best final validation loss)
times 1.1. For each way and seed, the final test loss and metric, the
steps spent to first reach the target (every step counts, the search's
included: a search's curve starts where its search ended; PBT's, ASHA's
and the grid's count every trial's steps) and the steps spent
searching. `results.md` shows mean and sample standard deviation over
the seeds and ranks the equal-budget ways by mean final test loss;
`summary.json` holds every number, and the performance profile:
per workload, each way's median steps to the target divided by the
best way's (infinite where it reached the target on fewer than half of
the seeds).
"""

import math
import statistics

from keras_lr_experiments import _files
from keras_lr_experiments import environment
from keras_lr_experiments.choose import ways

TARGET_FACTOR = 1.1
COLUMNS = (
    "rank",
    "way",
    "test_loss",
    "metric",
    "steps_to_target",
    "reached",
    "search_steps",
    "steps",
    "learning_rate",
)


def grid_records(records: list, workload, budget) -> list[dict]:
    """The grid reference as one record per grid seed: at each evaluation,
    the rate with the best validation loss so far; every rate's steps."""
    out = []
    for seed in budget.grid_seeds:
        runs = [
            r
            for r in records
            if r["way"] == "grid"
            and r["workload"] == workload.name
            and r["seed"] == seed
        ]
        if len(runs) != budget.grid_rates:
            continue
        runs.sort(key=lambda r: r["learning_rate"])
        curve = []
        for points in zip(*(r["curve"] for r in runs)):
            best = min(points, key=lambda p: _key(p[1]))
            curve.append([best[0] * len(runs)] + list(best[1:]))
        final = min(runs, key=lambda r: _key(r["final"]["val_loss"]))
        out.append(
            {
                "way": "grid",
                "workload": workload.name,
                "seed": seed,
                "learning_rate": final["learning_rate"],
                "search_steps": sum(r["steps"] for r in runs),
                "train_steps": 0,
                "steps": sum(r["steps"] for r in runs),
                "curve": curve,
                "final": final["final"],
            }
        )
    return out


def _key(value) -> float:
    return float("inf") if value is None else float(value)


def steps_to_target(curve: list, target: float | None):
    """The first steps at which the test loss is <= `target`, or None."""
    if target is None:
        return None
    for point in curve:
        if point[2] is not None and point[2] <= target:
            return int(point[0])
    return None


def _mean_std(values: list):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


def _median_steps(values: list):
    """Median steps to target, unreached counting as infinite; None when
    half or more of the seeds never reached it."""
    finite = sorted(math.inf if v is None else v for v in values)
    if not finite:
        return None
    median = statistics.median(finite)
    return None if math.isinf(median) else median


def summarize(loaded, records, budget, ray_ran: bool) -> dict:
    """Every figure of the table, per workload and way."""
    result = {}
    for workload in loaded:
        metric = "test_" + workload.metric
        grid = grid_records(records, workload, budget)
        if grid:
            target = TARGET_FACTOR * statistics.fmean(
                g["final"]["test_loss"] for g in grid
            )
        else:
            target = None
        by_way = {}
        for way in ways.WAYS:
            if way == "grid":
                runs = grid
            else:
                runs = [
                    r
                    for r in records
                    if r["way"] == way and r["workload"] == workload.name
                ]
            runs.sort(key=lambda r: r["seed"])
            if not runs:
                by_way[way] = {"skipped": way in ways.RAY_WAYS and not ray_ran}
                continue
            reached = [steps_to_target(r["curve"], target) for r in runs]
            loss, loss_std = _mean_std([r["final"]["test_loss"] for r in runs])
            value, value_std = _mean_std([r["final"][metric] for r in runs])
            by_way[way] = {
                "seeds": [r["seed"] for r in runs],
                "test_loss": [r["final"]["test_loss"] for r in runs],
                "test_loss_mean": loss,
                "test_loss_std": loss_std,
                metric: [r["final"][metric] for r in runs],
                metric + "_mean": value,
                metric + "_std": value_std,
                "steps_to_target": reached,
                "steps_to_target_median": _median_steps(reached),
                "reached": sum(v is not None for v in reached),
                "search_steps": [r["search_steps"] for r in runs],
                "steps": [r["steps"] for r in runs],
                "learning_rate": [r["learning_rate"] for r in runs],
                "curve_mean": _mean_curve(runs),
            }
        ranked = sorted(
            (
                w
                for w in by_way
                if w != "grid" and "test_loss_mean" in by_way[w]
            ),
            key=lambda w: (_key(by_way[w]["test_loss_mean"]), w),
        )
        for rank, way in enumerate(ranked, 1):
            by_way[way]["rank"] = rank
        medians = [
            by_way[w]["steps_to_target_median"]
            for w in by_way
            if by_way[w].get("steps_to_target_median") is not None
        ]
        best = min(medians) if medians else None
        for row in by_way.values():
            if "seeds" not in row:
                continue
            median = row["steps_to_target_median"]
            row["profile_ratio"] = (
                median / best if median is not None and best else None
            )
        result[workload.name] = {
            "description": workload.description,
            "metric": workload.metric,
            "target_test_loss": target,
            "grid_rate": [g["learning_rate"] for g in grid],
            "ranking": ranked,
            "ways": by_way,
        }
    return result


def _mean_curve(runs: list) -> list:
    """The seeds' curves averaged point by point (steps of the first)."""
    length = min(len(r["curve"]) for r in runs)
    curve = []
    for i in range(length):
        points = [r["curve"][i] for r in runs]
        losses = [p[2] for p in points if p[2] is not None]
        mean = statistics.fmean(losses) if len(losses) == len(points) else None
        curve.append([points[0][0], mean])
    return curve


def _fmt(mean, std, digits=4) -> str:
    if mean is None:
        return "diverged"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown(summary: dict, budget, command: str, ray_ran: bool) -> str:
    lines = [
        "# Choosing the rate at equal budget (part `choose`)",
        "",
        "Written by:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Every way trains {budget.steps} steps per workload and seed, its "
        "search included (batch 32); the grid reference trains "
        f"{budget.grid_rates} x {budget.steps}. Seeds "
        f"{', '.join(map(str, budget.seeds))}; grid seed(s) "
        f"{', '.join(map(str, budget.grid_seeds))}. Target: the grid "
        f"reference's final test loss x {TARGET_FACTOR}. Ranked by mean "
        "final test loss (the grid, at 19x the budget, is not ranked). "
        "Steps to target: median over the seeds (`-` where half or more "
        "never reached it), and how many seeds reached it.",
        "",
        "Seeded exactly (the same digits on every run): every way but "
        "`pbt` and `asha`, whose order of events is Ray's.",
        "",
    ]
    if not ray_ran:
        lines += [
            "**Ray is not installed: PBT and ASHA were skipped.**",
            "",
        ]
    for name, entry in summary.items():
        metric = entry["metric"]
        lines += [
            f"## {name}",
            "",
            f"{entry['description']}. Target test loss: "
            + (
                f"{entry['target_test_loss']:.4f}"
                if entry["target_test_loss"] is not None
                else "none (grid missing)"
            )
            + ".",
            "",
            f"| rank | way | test loss | test {metric} | steps to target "
            "| reached | search steps | steps | rate(s) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        order = entry["ranking"] + [
            w for w in ways.WAYS if w not in entry["ranking"]
        ]
        for way in order:
            row = entry["ways"][way]
            if "seeds" not in row:
                note = "skipped (no Ray)" if row.get("skipped") else "missing"
                lines.append(f"| - | {way} | {note} | | | | | | |")
                continue
            m = "test_" + metric
            median = row["steps_to_target_median"]
            rates = ", ".join(f"{r:.3g}" for r in row["learning_rate"])
            search = sorted(set(row["search_steps"]))
            lines.append(
                f"| {row.get('rank', 'ref')} | {way} | "
                f"{_fmt(row['test_loss_mean'], row['test_loss_std'])} | "
                f"{_fmt(row[m + '_mean'], row[m + '_std'], 3)} | "
                f"{'-' if median is None else int(median)} | "
                f"{row['reached']}/{len(row['seeds'])} | "
                f"{', '.join(map(str, search))} | "
                f"{', '.join(map(str, sorted(set(row['steps']))))} | "
                f"{rates} |"
            )
        lines.append("")
    lines += ["## Ways", ""]
    lines += [f"- `{w}`: {ways.LABELS[w]}" for w in ways.WAYS]
    lines.append("")
    return "\n".join(lines)


def write_tables(out, loaded, records, budget, command, ray_ran) -> dict:
    """Writes `results.md` and `summary.json` into `out`; returns the
    summary."""
    summary = summarize(loaded, records, budget, ray_ran)
    document = {
        "command": command,
        "budget": budget.to_dict(),
        "ray_ran": ray_ran,
        "workloads": summary,
        "versions": environment.versions(),
        "hardware": environment.hardware(),
    }
    _files.write_json(out / "summary.json", _files.json_safe(document))
    _files.write_text(
        out / "results.md", markdown(summary, budget, command, ray_ran)
    )
    return document
