"""`keras-lr tune`: one search, or the study and its report.

`run_one` runs one PBT or ASHA search and writes its trials (and for
PBT the population figure); `study` runs PBT, ASHA and the grid of
fixed rates over several seeds and writes the trials, `summary.json`,
`results.md` and the population figure of the first seed's PBT.
"""

import json
from pathlib import Path

from keras_lr_experiments import _files
from keras_lr_experiments.tune import figure
from keras_lr_experiments.tune import results
from keras_lr_experiments.tune import search
from keras_lr_experiments.tune.space import METHODS
from keras_lr_experiments.tune.space import STUDY

NAMES = {
    "pbt": "PBT (Ray `PopulationBasedTraining`)",
    "asha": "ASHA (Ray `ASHAScheduler`)",
    "grid": "best of the fixed-rate grid",
}


def results_markdown(table: dict, settings: dict, command: str) -> str:
    lines = [
        "# PBT and ASHA against a grid of fixed rates (digits)",
        "",
        "Made by:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Settings: {json.dumps(settings, sort_keys=True)}",
        "",
        "The reproduction's digits MLP (64-64-10) under Adam at a constant "
        "rate, batch 32, 1,347 train / 450 validation digits. Every search "
        "picks its trial by the final validation loss (the metric PBT and "
        "ASHA rank by), and the table gives that trial's final validation "
        "loss and accuracy, mean ± sample std over the seeds. Budget: "
        "epochs trained, summed over all trials of the search.",
        "",
        "| method | trials | budget (epochs, per seed) | final val loss | "
        "final val accuracy | exploits | wall time (s, per seed) |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, row in table.items():
        budgets = ", ".join(str(b) for b in row["budget_epochs"])
        exploited = "-"
        if method == "pbt":
            exploited = ", ".join(str(e) for e in row["exploits"])
        walls = ", ".join(f"{w:.0f}" for w in row["wall_time_s"])
        lines.append(
            f"| {NAMES[method]} | {row['trials'][0]} | {budgets} | "
            f"{row['final_val_loss_mean']:.4f} ± "
            f"{row['final_val_loss_std']:.4f} | "
            f"{row['final_val_accuracy_mean']:.4f} ± "
            f"{row['final_val_accuracy_std']:.4f} | {exploited} | {walls} |"
        )
    lines += ["", "Per seed (the trial each search ends with):", ""]
    lines += [
        "| method | seed | val loss | val accuracy | its rate at the end |",
        "|---|---|---|---|---|",
    ]
    for method, row in table.items():
        for seed, best in zip(row["seeds"], row["best"]):
            lines.append(
                f"| {method} | {seed} | {best['val_loss']:.4f} | "
                f"{best['val_accuracy']:.4f} | {best['learning_rate']:.3g} |"
            )
    return "\n".join(lines) + "\n"


def study(
    *,
    seeds: list[int],
    out,
    methods: tuple[str, ...] = METHODS,
    address: str | None = None,
    num_cpus: int | None = None,
    command: str = "",
    storage=None,
    **settings,
) -> dict:
    """PBT, ASHA and the grid over `seeds`; writes the trials, the summary,
    `results.md` and the population figure of the first seed's PBT."""
    from keras_lr_experiments import environment

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    values = dict(STUDY, **settings)
    search.start_ray(address, num_cpus)
    runs = []
    for seed in seeds:
        for method in methods:
            run = search.run_search(
                method, seed=seed, storage_path=storage or out / "ray", **values
            )
            results.save_trials(
                out / f"trials_{method}_seed{seed}.json", run["trials"]
            )
            print(
                f"{method} seed {seed}: best val_loss "
                f"{run['best']['val_loss']:.4f}, val_accuracy "
                f"{run['best']['val_accuracy']:.4f}, budget "
                f"{run['budget_epochs']} epochs, {run['wall_time_s']} s",
                flush=True,
            )
            runs.append(run)
            if method == "pbt" and seed == seeds[0]:
                figure.plot_population(run, out / "population_lr.png")
    table = results.summarize(runs)
    summary = {
        "command": command,
        "settings": values,
        "table": table,
        "versions": environment.versions(),
        "ray": _ray_version(),
        "hardware": environment.hardware(),
    }
    _files.write_json(out / "summary.json", _files.json_safe(summary))
    _files.write_text(
        out / "results.md", results_markdown(table, values, command)
    )
    return summary


def _ray_version() -> str:
    import ray

    return ray.__version__


def run_one(
    scheduler: str,
    *,
    seed: int,
    out,
    address: str | None = None,
    num_cpus: int | None = None,
    storage=None,
    **settings,
) -> dict:
    """`keras-lr tune`: one PBT or ASHA search; writes the trials (and for
    PBT the population figure) under `out` and prints the best trial."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    values = dict(STUDY, **settings)
    search.start_ray(address, num_cpus)
    run = search.run_search(
        scheduler, seed=seed, storage_path=storage or out / "ray", **values
    )
    results.save_trials(
        out / f"trials_{scheduler}_seed{seed}.json", run["trials"]
    )
    written = [out / f"trials_{scheduler}_seed{seed}.json"]
    if scheduler == "pbt":
        figure.plot_population(run, out / f"population_lr_seed{seed}.png")
        written.append(out / f"population_lr_seed{seed}.png")
    best = run["best"]
    print(
        f"{scheduler} seed {seed}: {len(run['trials'])} trials, "
        f"{run['budget_epochs']} epochs in all, {run['exploits']} "
        f"exploits, {run['wall_time_s']} s; best final val_loss "
        f"{best['val_loss']:.4f} (val_accuracy {best['val_accuracy']:.4f}, "
        f"rate {best['learning_rate']:.3g}); wrote "
        + ", ".join(str(p) for p in written)
    )
    return run
