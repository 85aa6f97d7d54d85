"""PBT and ASHA over the learning rate of the reproduction's digits model.

`train_digits(config)` is a Ray Tune function: the reproduction's MLP on
the digits, fed by a `keras_lr.data.GrowingBatchLoader` whose batch size
follows `config["batch_size"]` (so PBT can explore it too), trained with
Adam at `config["learning_rate"]` (constant, or the peak of a warmup +
cosine schedule), and reported every epoch with
`keras_lr.tune.ReportAndCheckpoint`, which carries the whole keras_lr
state through PBT's exploits and Ray's restarts after a failure.

`run_pbt`, `run_asha` and `run_grid` run one search each with Ray's own
schedulers (`PopulationBasedTraining`, `ASHAScheduler`, a grid of fixed
rates); Ray starts in-process unless `address` names a cluster.
"""

import csv
import json
import math
import os
import signal
import time

HYPERPARAMETERS = ("learning_rate", "batch_size")
SCHEDULES = ("constant", "warmup_cosine")
SCHEDULERS = ("pbt", "asha")
METRIC = "val_loss"
MODE = "min"


def trial_config(
    learning_rate: float,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 32,
    schedule: str = "constant",
    plateau: bool = False,
    kill_at: list | None = None,
    marker_dir: str | None = None,
) -> dict:
    """A config of `train_digits`.

    Args:
        learning_rate: The rate (its peak with `"warmup_cosine"`).
        epochs: Epochs of the trial.
        seed: Seeds the weights and the loader's shuffling.
        batch_size: The loader's batch size (the one a warmup + cosine
            schedule is laid out for, whatever PBT makes of it later).
        schedule: `"constant"` or `"warmup_cosine"` (one epoch of linear
            warmup, then cosine decay to 0 at the last step).
        plateau: Adds `keras_lr.callbacks.ReduceLROnPlateau` on
            `val_loss` (factor 0.5, patience 1), whose counters the
            checkpoints carry.
        kill_at: `[epoch, batch]` (0-based): the first trial to get there
            kills its own process with SIGKILL, once (a fault test).
        marker_dir: The folder where that trial leaves its mark.
    """
    return {
        "learning_rate": float(learning_rate),
        "batch_size": int(batch_size),
        # Not mutated: the schedule's length in steps stays the same when
        # PBT explores the batch size (see `train_digits`).
        "schedule_batch_size": int(batch_size),
        "epochs": int(epochs),
        "seed": int(seed),
        "schedule": schedule,
        "plateau": bool(plateau),
        "kill_at": kill_at,
        "marker_dir": marker_dir,
    }


def _killer(config: dict):
    import keras

    epoch_at, batch_at = config["kill_at"]
    marker = os.path.join(config["marker_dir"], "killed")

    class KillOnce(keras.callbacks.Callback):
        """SIGKILLs this trial's process at (epoch, batch), once in all."""

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self._epoch, batch) != (epoch_at, batch_at):
                return
            try:
                handle = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(handle, str(os.getpid()).encode())
            os.close(handle)
            os.kill(os.getpid(), signal.SIGKILL)

    return KillOnce()


def train_digits(config: dict) -> None:
    """Ray Tune function: the digits MLP, reported every epoch."""
    import keras

    import keras_lr
    import keras_lr.tune
    from keras_lr_experiments import datasets
    from keras_lr_experiments import models

    # An actor Ray reuses keeps the previous trial's graphs.
    keras.backend.clear_session()
    data = datasets.load_dataset("digits")
    keras.utils.set_random_seed(config["seed"])
    model = models.build_model(data.kind, data.input_shape, data.num_classes)
    loader = keras_lr.data.GrowingBatchLoader(
        data.x_train,
        data.y_train,
        batch_size=int(config["batch_size"]),
        seed=config["seed"],
    )
    rate = float(config["learning_rate"])
    if config["schedule"] == "warmup_cosine":
        # In steps of the starting batch size, the same in every trial, so
        # that a trial exploiting another with a new batch size keeps the
        # donor's schedule (it counts optimizer steps: at twice the batch,
        # an epoch moves it half as far).
        per_epoch = math.ceil(
            len(data.y_train) / int(config["schedule_batch_size"])
        )
        rate = keras_lr.schedules.CosineDecay(
            0.0,
            decay_steps=per_epoch * (config["epochs"] - 1),
            warmup_target=rate,
            warmup_steps=per_epoch,
        )
    models.compile_model(model, keras.optimizers.Adam(learning_rate=rate))
    callbacks = [
        # The batch size of each epoch is the config's: an exploit that
        # explores it takes effect at the next epoch.
        keras_lr.callbacks.BatchSizeScheduler(
            loader,
            lambda epoch, size: int(config["batch_size"]),
            max_batch_size=None,
        ),
    ]
    if config["plateau"]:
        callbacks.append(
            keras_lr.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=1
            )
        )
    if config.get("kill_at"):
        callbacks.append(_killer(config))
    callbacks.append(keras_lr.tune.ReportAndCheckpoint(config))
    model.fit(
        loader.as_dataset(),
        steps_per_epoch=loader.steps_per_epoch,
        epochs=config["epochs"],
        shuffle=False,
        validation_data=(data.x_val, data.y_val),
        verbose=0,
        callbacks=callbacks,
    )


def start_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Starts Ray in this process, or joins the cluster at `address`."""
    import ray

    if ray.is_initialized():
        return
    # Ray reuses a trial's process for the next trial (no second
    # TensorFlow import) once the previous function has stopped, which it
    # does at its next report: allow an epoch on a busy machine, not
    # Ray's 2 s, past which the reuse fails the trial.
    runtime_env = {"env_vars": {"TUNE_FUNCTION_THREAD_TIMEOUT_S": "120"}}
    if address:
        ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
    else:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env=runtime_env,
        )


def _tuner(trainable_config, scheduler, storage_path, name, samples, fail):
    from ray import tune

    return tune.Tuner(
        tune.with_resources(train_digits, {"cpu": 1}),
        param_space=trainable_config,
        tune_config=tune.TuneConfig(
            scheduler=scheduler,
            num_samples=samples,
            metric=METRIC if scheduler is None else None,
            mode=MODE if scheduler is None else None,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=os.path.abspath(os.fspath(storage_path)),
            failure_config=tune.FailureConfig(max_failures=fail),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            verbose=0,
        ),
    )


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_progress(trial_dir: str) -> list[dict]:
    """A trial's reports in order, from Ray's `progress.csv` (appended to
    across restarts and exploits, unlike `result.json`)."""
    path = os.path.join(trial_dir, "progress.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as file:
        return [
            {key: _number(value) for key, value in row.items()}
            for row in csv.DictReader(file)
        ]


def _trials(results) -> list[dict]:
    """Each trial's id, config, folder, error and reports in order."""
    trials = []
    for result in results:
        rows = read_progress(result.path)
        trial_id = rows[0]["trial_id"] if rows else None
        trials.append(
            {
                "trial_id": trial_id,
                "config": result.config,
                "path": result.path,
                "error": None if result.error is None else str(result.error),
                "history": rows,
            }
        )
    return trials


def run_pbt(
    *,
    population: int,
    epochs: int,
    perturbation_interval: int,
    seed: int,
    storage_path,
    name: str = "pbt",
    mutations: tuple[str, ...] = ("learning_rate",),
    initial_rates: list[float] | None = None,
    schedule: str = "constant",
    plateau: bool = False,
    quantile_fraction: float = 0.25,
    perturbation_factors: tuple[float, float] = (1.2, 0.8),
    resample_probability: float = 0.25,
    synch: bool = True,
    kill_at: list | None = None,
    max_failures: int = 0,
) -> list[dict]:
    """PBT over the rate (and optionally the batch size) with Ray's
    `PopulationBasedTraining`; returns the trials (see `_trials`)."""
    import random

    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    import keras_lr.tune

    space = {
        "learning_rate": tune.loguniform(1e-4, 1e-1),
        "batch_size": [16, 32, 64, 128],
    }
    keras_lr.tune.check_mutations(dict.fromkeys(mutations), HYPERPARAMETERS)
    chosen = {key: space[key] for key in mutations}
    keras_lr.tune.check_perturbation_interval(perturbation_interval, epochs)
    # PBT's explore draws from Python's `random`.
    random.seed(seed)
    if initial_rates is None:
        initial_rates = list(
            10 ** (-3.5 + 2.5 * (i + 0.5) / population)
            for i in range(population)
        )
    scheduler = PopulationBasedTraining(
        time_attr="epoch",
        metric=METRIC,
        mode=MODE,
        perturbation_interval=perturbation_interval,
        hyperparam_mutations=chosen,
        quantile_fraction=quantile_fraction,
        resample_probability=resample_probability,
        perturbation_factors=perturbation_factors,
        synch=synch,
    )
    config = trial_config(
        1e-3,
        epochs=epochs,
        seed=seed,
        schedule=schedule,
        plateau=plateau,
        kill_at=kill_at,
        marker_dir=os.path.abspath(os.fspath(storage_path)),
    )
    config["learning_rate"] = tune.grid_search(
        [float(r) for r in initial_rates]
    )
    tuner = _tuner(config, scheduler, storage_path, name, 1, max_failures)
    return _trials(tuner.fit())


def run_asha(
    *,
    samples: int,
    epochs: int,
    grace_period: int,
    reduction_factor: int,
    seed: int,
    storage_path,
    name: str = "asha",
) -> list[dict]:
    """ASHA (successive halving) over the rate with Ray's `ASHAScheduler`:
    the budgeted trial and error."""
    import random

    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    scheduler = ASHAScheduler(
        time_attr="epoch",
        metric=METRIC,
        mode=MODE,
        max_t=epochs,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
    )
    # Rates spread evenly in log space over the same range as PBT's,
    # shuffled by the seed so that the order of promotion is not sorted.
    rng = random.Random(seed)
    rates = [10 ** (-4 + 3 * (i + 0.5) / samples) for i in range(samples)]
    rng.shuffle(rates)
    config = trial_config(1e-3, epochs=epochs, seed=seed)
    config["learning_rate"] = tune.grid_search(rates)
    tuner = _tuner(config, scheduler, storage_path, name, 1, 0)
    return _trials(tuner.fit())


def run_grid(
    *,
    rates: list[float],
    epochs: int,
    seed: int,
    storage_path,
    name: str = "grid",
    schedule: str = "constant",
    plateau: bool = False,
    kill_at: list | None = None,
    max_failures: int = 0,
) -> list[dict]:
    """Each fixed rate for the whole run (Ray's default FIFO scheduler)."""
    from ray import tune

    config = trial_config(
        1e-3,
        epochs=epochs,
        seed=seed,
        schedule=schedule,
        plateau=plateau,
        kill_at=kill_at,
        marker_dir=os.path.abspath(os.fspath(storage_path)),
    )
    config["learning_rate"] = tune.grid_search([float(r) for r in rates])
    tuner = _tuner(config, None, storage_path, name, 1, max_failures)
    return _trials(tuner.fit())


def exploits(trial: dict) -> list[dict]:
    """The restores of a trial from another trial's checkpoint."""
    events = []
    seen = set()
    for row in trial["history"]:
        donor = row.get("restored_from_trial") or ""
        key = (
            donor,
            row.get("restored_from_epoch"),
            row.get("start_iterations"),
        )
        if donor and donor != trial["trial_id"] and key not in seen:
            seen.add(key)
            events.append(
                {
                    "epoch": int(row["restored_from_epoch"]),
                    "donor": donor,
                    "start_learning_rate": row["start_learning_rate"],
                }
            )
    return events


def budget(trials: list[dict]) -> int:
    """Epochs trained, summed over trials (reports, restarts excluded)."""
    return sum(len(t["history"]) for t in trials)


def final_score(trials: list[dict]) -> dict:
    """The best trial at the end: by the last reported `val_loss` among the
    trials that ran the most epochs."""
    longest = max(
        int(t["history"][-1]["epoch"]) for t in trials if t["history"]
    )
    finished = [
        t
        for t in trials
        if t["history"] and t["history"][-1]["epoch"] == longest
    ]
    best = min(finished, key=lambda t: t["history"][-1]["val_loss"])
    last = best["history"][-1]
    return {
        "trial_id": best["trial_id"],
        "val_loss": float(last["val_loss"]),
        "val_accuracy": float(last["val_accuracy"]),
        # The rate of its last epoch's end (PBT may have perturbed the
        # config once more after it).
        "learning_rate": float(last["learning_rate"]),
        "epochs": longest,
    }


def save_trials(path, trials: list[dict]) -> None:
    """The trials' histories as JSON (for the figure and the table)."""
    keep = (
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "lr_multiplier",
        "iterations",
        "batch_size",
        "restored_from_trial",
        "restored_from_epoch",
        "start_learning_rate",
        "start_iterations",
        "time_total_s",
    )
    out = []
    for trial in trials:
        out.append(
            {
                "trial_id": trial["trial_id"],
                "config": {
                    k: trial["config"][k]
                    for k in ("learning_rate", "batch_size", "seed", "epochs")
                },
                "error": trial["error"],
                "history": [
                    {k: _plain(row.get(k)) for k in keep}
                    for row in trial["history"]
                ],
            }
        )
    tmp = f"{path}.tmp"
    with open(tmp, "w") as file:
        json.dump(out, file, indent=1)
    os.replace(tmp, path)


def _plain(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def now() -> float:
    return time.monotonic()


# The study: PBT and ASHA against a grid of fixed rates ---------------------

STUDY = {
    "epochs": 12,
    "population": 4,
    "perturbation_interval": 3,
    "asha_samples": 9,
    "asha_grace_period": 2,
    "asha_reduction_factor": 3,
}


def population_rates(population: int) -> list[float]:
    """`population` rates evenly spaced in log10 over [10^-3.5, 10^-1]:
    PBT's starting rates, and the grid of fixed rates it is compared to."""
    return [
        10 ** (-3.5 + 2.5 * (i + 0.5) / population) for i in range(population)
    ]


def run_search(
    method: str,
    *,
    seed: int,
    storage_path,
    epochs: int,
    population: int,
    perturbation_interval: int,
    asha_samples: int,
    asha_grace_period: int,
    asha_reduction_factor: int,
    mutations: tuple[str, ...] = ("learning_rate",),
    schedule: str = "constant",
) -> dict:
    """One search (`"pbt"`, `"asha"` or `"grid"`) of one seed: its trials,
    budget, best final trial and wall time."""
    start = now()
    name = f"{method}_seed{seed}"
    if method == "pbt":
        trials = run_pbt(
            population=population,
            epochs=epochs,
            perturbation_interval=perturbation_interval,
            seed=seed,
            storage_path=storage_path,
            name=name,
            mutations=mutations,
            initial_rates=population_rates(population),
            schedule=schedule,
            # Generations: every trial is perturbed at the same epoch, so
            # a trial never takes a donor's checkpoint from another epoch
            # (with more trials than CPUs, asynchronous PBT does), and the
            # run does not depend on which trial the machine ran first.
            synch=True,
        )
    elif method == "asha":
        trials = run_asha(
            samples=asha_samples,
            epochs=epochs,
            grace_period=asha_grace_period,
            reduction_factor=asha_reduction_factor,
            seed=seed,
            storage_path=storage_path,
            name=name,
        )
    elif method == "grid":
        trials = run_grid(
            rates=population_rates(population),
            epochs=epochs,
            seed=seed,
            storage_path=storage_path,
            name=name,
            schedule=schedule,
        )
    else:
        raise ValueError(
            "Argument `method` must be one of pbt, asha, grid. "
            f"Received: method={method!r}"
        )
    errors = [t["error"] for t in trials if t["error"]]
    if errors:
        raise RuntimeError(
            f"{name}: {len(errors)} trial(s) failed: {errors[0]}"
        )
    return {
        "method": method,
        "seed": seed,
        "trials": trials,
        "budget_epochs": budget(trials),
        "best": final_score(trials),
        "exploits": sum(len(exploits(t)) for t in trials),
        "wall_time_s": round(now() - start, 1),
    }


def _paths(trial: dict, by_id: dict) -> dict:
    """A trial's lines over the epochs, broken at each exploit: `rate` and
    `loss` as (x, y) lists, `events` as (epoch, donor's rate, new rate,
    donor's id, validation loss of the first epoch after)."""
    rate = ([0], [trial["history"][0]["start_learning_rate"]])
    loss = ([], [])
    events = []
    for row in trial["history"]:
        donor = row.get("restored_from_trial") or ""
        epoch = row.get("restored_from_epoch")
        if donor and donor != trial["trial_id"] and row["epoch"] == epoch + 1:
            donor_rate = next(
                r["learning_rate"]
                for r in by_id[donor]["history"]
                if r["epoch"] == epoch
            )
            events.append(
                (
                    epoch,
                    donor_rate,
                    row["start_learning_rate"],
                    donor,
                    row["val_loss"],
                )
            )
            for xs, ys in (rate, loss):
                xs.append(math.nan)
                ys.append(math.nan)
            rate[0].append(epoch)
            rate[1].append(row["start_learning_rate"])
        rate[0].append(row["epoch"])
        rate[1].append(row["learning_rate"])
        loss[0].append(row["epoch"])
        loss[1].append(row["val_loss"])
    return {"rate": rate, "loss": loss, "events": events}


def plot_population(search: dict, path) -> None:
    """The population's rates and validation losses over the epochs, with
    each exploit marked (PNG at `path`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_lr_experiments import _files

    trials = search["trials"]
    by_id = {t["trial_id"]: t for t in trials}
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 7), sharex=True, constrained_layout=True
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    marked = False
    index_of = {t["trial_id"]: f"trial {i}" for i, t in enumerate(trials)}
    for index, trial in enumerate(trials):
        color = colors[index % len(colors)]
        paths = _paths(trial, by_id)
        # A fresh trial's first report holds the rate it started at.
        label = f"trial {index} (starts at {paths['rate'][1][0]:.2g})"
        top.plot(*paths["rate"], "-o", ms=3, color=color, label=label)
        bottom.plot(*paths["loss"], "-o", ms=3, color=color)
        for epoch, donor_rate, new_rate, donor, after in paths["events"]:
            top.annotate(
                "",
                xy=(epoch, new_rate),
                xytext=(epoch, donor_rate),
                arrowprops={"arrowstyle": "->", "color": color, "lw": 1.2},
            )
            top.annotate(
                f"from {index_of[donor]}",
                xy=(epoch, new_rate),
                xytext=(4, -12),
                textcoords="offset points",
                fontsize=7,
                color=color,
            )
            top.plot(
                [epoch], [new_rate], "*", ms=12, color=color,
                markeredgecolor="black",
                label=None if marked else "exploit: copies a better trial's "
                "state, then its rate x perturbation",
            )  # fmt: skip
            bottom.plot(
                [epoch + 1], [after], "*", ms=12, color=color,
                markeredgecolor="black",
            )  # fmt: skip
            marked = True
    top.set_yscale("log")
    top.set_ylabel("learning rate (Adam)")
    top.set_title(
        f"PBT, population {len(trials)}, seed {search['seed']}: "
        f"{search['exploits']} exploits"
    )
    top.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.set_yscale("log")
    bottom.set_ylabel("validation loss")
    bottom.set_xlabel("epoch")
    top.grid(True, which="both", alpha=0.3)
    bottom.grid(True, which="both", alpha=0.3)
    _files.save_figure(figure, path)
    plt.close(figure)


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def summarize(searches: list[dict]) -> dict:
    """Mean and spread (sample std) over seeds, per method."""
    table = {}
    for method in ("pbt", "asha", "grid"):
        rows = [s for s in searches if s["method"] == method]
        if not rows:
            continue
        loss = _mean_std([s["best"]["val_loss"] for s in rows])
        accuracy = _mean_std([s["best"]["val_accuracy"] for s in rows])
        table[method] = {
            "seeds": [s["seed"] for s in rows],
            "trials": [len(s["trials"]) for s in rows],
            "budget_epochs": [s["budget_epochs"] for s in rows],
            "final_val_loss_mean": loss[0],
            "final_val_loss_std": loss[1],
            "final_val_accuracy_mean": accuracy[0],
            "final_val_accuracy_std": accuracy[1],
            "best": [s["best"] for s in rows],
            "exploits": [s["exploits"] for s in rows],
            "wall_time_s": [s["wall_time_s"] for s in rows],
        }
    return table


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
    methods: tuple[str, ...] = ("pbt", "asha", "grid"),
    address: str | None = None,
    num_cpus: int | None = None,
    command: str = "",
    storage=None,
    **settings,
) -> dict:
    """PBT, ASHA and the grid over `seeds`; writes the trials, the summary,
    `results.md` and the population figure of the first seed's PBT."""
    from pathlib import Path

    from keras_lr_experiments import _files
    from keras_lr_experiments import environment

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    values = dict(STUDY, **settings)
    start_ray(address, num_cpus)
    searches = []
    for seed in seeds:
        for method in methods:
            search = run_search(
                method, seed=seed, storage_path=storage or out / "ray", **values
            )
            save_trials(
                out / f"trials_{method}_seed{seed}.json", search["trials"]
            )
            print(
                f"{method} seed {seed}: best val_loss "
                f"{search['best']['val_loss']:.4f}, val_accuracy "
                f"{search['best']['val_accuracy']:.4f}, budget "
                f"{search['budget_epochs']} epochs, {search['wall_time_s']} s",
                flush=True,
            )
            searches.append(search)
            if method == "pbt" and seed == seeds[0]:
                plot_population(search, out / "population_lr.png")
    table = summarize(searches)
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
    from pathlib import Path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    values = dict(STUDY, **settings)
    start_ray(address, num_cpus)
    search = run_search(
        scheduler, seed=seed, storage_path=storage or out / "ray", **values
    )
    save_trials(out / f"trials_{scheduler}_seed{seed}.json", search["trials"])
    written = [out / f"trials_{scheduler}_seed{seed}.json"]
    if scheduler == "pbt":
        plot_population(search, out / f"population_lr_seed{seed}.png")
        written.append(out / f"population_lr_seed{seed}.png")
    best = search["best"]
    print(
        f"{scheduler} seed {seed}: {len(search['trials'])} trials, "
        f"{search['budget_epochs']} epochs in all, {search['exploits']} "
        f"exploits, {search['wall_time_s']} s; best final val_loss "
        f"{best['val_loss']:.4f} (val_accuracy {best['val_accuracy']:.4f}, "
        f"rate {best['learning_rate']:.3g}); wrote "
        + ", ".join(str(p) for p in written)
    )
    return search
