"""Starting Ray and running one search: PBT, ASHA or a grid of fixed rates.

`run_pbt`, `run_asha` and `run_grid` run one search each with Ray's own
schedulers (`PopulationBasedTraining`, `ASHAScheduler`, Ray's default
FIFO over a grid); Ray starts in-process unless `address` names a
cluster. Each returns the trials as `results.read_trials` reads them;
`run_search` runs one of them for one seed of the study and sums it up.
"""

import os
import random
import time

from keras_lr_experiments.tune import results
from keras_lr_experiments.tune.space import HYPERPARAMETERS
from keras_lr_experiments.tune.space import METHODS
from keras_lr_experiments.tune.space import METRIC
from keras_lr_experiments.tune.space import MODE
from keras_lr_experiments.tune.space import asha_rates
from keras_lr_experiments.tune.space import population_rates
from keras_lr_experiments.tune.trial import train_digits
from keras_lr_experiments.tune.trial import trial_config


def start_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Starts Ray in this process, or joins the cluster at `address`."""
    import ray

    if ray.is_initialized():
        return
    # Ray reuses a trial's process for the next trial (no second
    # TensorFlow import) once the previous function has stopped, which it
    # does at its next report: allow an epoch on a busy machine, not
    # Ray's 2 s, past which the reuse fails the trial.
    env_vars = {"TUNE_FUNCTION_THREAD_TIMEOUT_S": "120"}
    if address:
        ray.init(
            address=address,
            log_to_driver=False,
            runtime_env={"env_vars": env_vars},
        )
    else:
        # The trials import this code from where this process does (a
        # checkout, not another installed copy).
        env_vars["PYTHONPATH"] = _import_path()
        runtime_env = {"env_vars": env_vars}
        # The trials are this run's work: Ray's default niceness (15)
        # would give them almost no CPU beside any other busy process.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env=runtime_env,
        )


def _import_path() -> str:
    """The folders that hold `keras_lr` and this app here, then
    `PYTHONPATH`."""
    import keras_lr
    import keras_lr_experiments

    folders = [
        os.path.dirname(os.path.dirname(os.path.abspath(package.__file__)))
        for package in (keras_lr_experiments, keras_lr)
    ]
    folders += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return os.pathsep.join(dict.fromkeys(p for p in folders if p))


def _fit(
    rates, scheduler, storage_path, name: str, max_failures: int, **trial
) -> list[dict]:
    """One trial per rate (Ray's grid search, `trial` the rest of each
    `trial_config`) under `scheduler`; returns the trials."""
    from ray import tune

    storage_path = os.path.abspath(os.fspath(storage_path))
    config = trial_config(1e-3, marker_dir=storage_path, **trial)
    config["learning_rate"] = tune.grid_search([float(r) for r in rates])
    tuner = tune.Tuner(
        tune.with_resources(train_digits, {"cpu": 1}),
        param_space=config,
        tune_config=tune.TuneConfig(
            scheduler=scheduler,
            num_samples=1,
            metric=METRIC if scheduler is None else None,
            mode=MODE if scheduler is None else None,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            verbose=0,
        ),
    )
    return results.read_trials(tuner.fit())


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
    `PopulationBasedTraining`; returns the trials (see
    `results.read_trials`)."""
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
        initial_rates = population_rates(population)
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
    return _fit(
        initial_rates,
        scheduler,
        storage_path,
        name,
        max_failures,
        epochs=epochs,
        seed=seed,
        schedule=schedule,
        plateau=plateau,
        kill_at=kill_at,
    )


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
    rates = asha_rates(samples)
    rng.shuffle(rates)
    return _fit(
        rates, scheduler, storage_path, name, 0, epochs=epochs, seed=seed
    )


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
    return _fit(
        rates,
        None,
        storage_path,
        name,
        max_failures,
        epochs=epochs,
        seed=seed,
        schedule=schedule,
        plateau=plateau,
        kill_at=kill_at,
    )


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
    start = time.monotonic()
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
            f"Argument `method` must be one of {', '.join(METHODS)}. "
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
        "budget_epochs": results.budget(trials),
        "best": results.final_score(trials),
        "exploits": sum(len(results.exploits(t)) for t in trials),
        "wall_time_s": round(time.monotonic() - start, 1),
    }
