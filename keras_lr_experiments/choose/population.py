"""PBT and ASHA on Ray Tune at the part's budget.

Ray's own schedulers (`PopulationBasedTraining`, `ASHAScheduler`) decide;
each trial is a thin Ray Tune function that hands its steps to one
`TrainingServer` actor, which holds every workload's compiled
`loop.Trainer` for the whole part. So TensorFlow is imported once for all
thirty searches, not once per search, and a trial costs its steps.

The budget is exact and measured: every report carries `trained`, the
steps the server's optimizer counted for that chunk, and
- PBT: `population` trials of `steps // population` steps each (Ray's
  `stop` ends each there; exploiting a donor continues from the donor's
  step, so nothing is trained twice);
- ASHA: more trials than the budget can hold; a stopper ends the search
  when the reported steps reach the budget (one trial at a time, whose
  function Ray holds at each report, so none trains past its last one).

Not seeded exactly: Ray decides when results are processed, and PBT's
explore draws from Python's `random` at those moments.
"""

import logging
import math
import os
import random
import tempfile

import numpy as np

SERVER_NAME = "keras_lr_choose_training_server"


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def _server_class():
    import ray

    @ray.remote(num_cpus=1)
    class TrainingServer:
        """Trains chunks of Ray trials, each from the state it is given."""

        def __init__(self):
            from keras_lr_experiments.choose import loop

            self.loop = loop
            self.trainers = {}
            self.workloads = {}
            self.inits = {}
            self.spent = {}

        def train(
            self,
            group,
            budget,
            workload_name,
            seed,
            stream,
            state,
            rate,
            start,
            n,
        ):
            """`(state, evaluation, trained)`, or `None` once `group` has
            spent `budget` steps (the chunk is then not trained)."""
            import keras

            from keras_lr_experiments.choose import workloads

            loop = self.loop
            if self.spent.get(group, 0) + n > budget:
                return None
            if workload_name not in self.workloads:
                self.workloads[workload_name] = workloads.load_workload(
                    workload_name
                )
                keras.config.disable_interactive_logging()
            workload = self.workloads[workload_name]
            if workload_name not in self.trainers:
                self.trainers[workload_name] = loop.Trainer(workload)
            trainer = self.trainers[workload_name]
            if state is None:
                key = (workload_name, seed)
                if key not in self.inits:
                    self.inits[key] = loop.initial_weights(workload, seed)
                trainer.reset(self.inits[key])
            else:
                trainer.set_state(state)
            before = trainer.steps
            indices = loop.batch_indices(
                len(workload.y_train), start + n, stream
            )[start:]
            trainer.train(indices, np.full(n, rate))
            trained = trainer.steps - before
            self.spent[group] = self.spent.get(group, 0) + trained
            return trainer.get_state(), trainer.evaluate(), trained

    return TrainingServer


def choose_trial(config: dict) -> None:
    """Ray Tune function: `config["max_steps"]` steps at the config's rate,
    reported every `config["eval_every"]`, on the shared server."""
    import pickle

    import ray
    from ray import tune

    server = ray.get_actor(SERVER_NAME)
    state, step = None, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            with open(os.path.join(folder, "state.pkl"), "rb") as handle:
                saved = pickle.load(handle)
        state, step = saved["state"], saved["step"]
    while step < config["max_steps"]:
        n = min(config["eval_every"], config["max_steps"] - step)
        answer = ray.get(
            server.train.remote(
                config["group"],
                config["budget"],
                config["workload"],
                config["seed"],
                config["stream"],
                state,
                float(config["learning_rate"]),
                step,
                n,
            )
        )
        if answer is None:
            # The search's budget is spent.
            return
        state, evaluation, trained = answer
        step += n
        metrics = dict(evaluation, steps=step, trained=trained)
        metrics["learning_rate"] = float(config["learning_rate"])
        if not config["checkpoint"]:
            tune.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "state.pkl"), "wb") as handle:
                pickle.dump({"state": state, "step": step}, handle)
            tune.report(
                metrics, checkpoint=tune.Checkpoint.from_directory(folder)
            )


class Session:
    """Ray started in this process with the training server; a context
    manager that shuts Ray down on exit."""

    def __init__(self, num_cpus: int = 2):
        self.num_cpus = num_cpus

    def __enter__(self):

        from keras_lr_experiments.tune.search import start_ray

        # Tune warns of every trial's missing `result.json` when PBT clones
        # a trial; the part's own lines say what happened.
        logging.getLogger("ray.tune").setLevel(logging.ERROR)
        # Ray's boxes of every search's settings: the part prints its own.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        # Ctrl-C must end the part (it resumes on the next call), not only
        # the search running, which Tune's own handler would do.
        os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
        start_ray(None, num_cpus=self.num_cpus)
        self.server = _server_class().options(name=SERVER_NAME).remote()
        self.storage = tempfile.mkdtemp(prefix="keras_lr_choose_ray_")
        return self

    def __exit__(self, *exc):
        import shutil

        import ray

        ray.kill(self.server)
        ray.shutdown()
        shutil.rmtree(self.storage, ignore_errors=True)
        return False

    def search(self, method: str, workload: str, seed: int, budget) -> dict:
        """One PBT or ASHA search; every result in the order Ray took
        them, with the steps each trained."""
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.schedulers import PopulationBasedTraining

        low, high = budget.asha_range
        if method == "pbt":
            per_trial = budget.steps // budget.population
            rates = _log_spaced(low, high, budget.population)
            # PBT's explore draws from Python's `random`.
            random.seed(seed)
            scheduler = PopulationBasedTraining(
                time_attr="steps",
                metric="val_loss",
                mode="min",
                perturbation_interval=budget.perturbation_interval,
                hyperparam_mutations={
                    "learning_rate": tune.loguniform(low, high)
                },
                synch=True,
            )
        else:
            per_trial = budget.steps // budget.population
            rates = _log_spaced(low, high, budget.asha_rates)
            random.Random(seed).shuffle(rates)
            scheduler = ASHAScheduler(
                time_attr="steps",
                metric="val_loss",
                mode="min",
                max_t=per_trial,
                grace_period=budget.asha_grace,
                reduction_factor=2,
            )
        collector = _Collector()
        config = {
            "group": f"{method}/{workload}/{seed}",
            "budget": budget.steps,
            "workload": workload,
            "seed": seed,
            "stream": tune.grid_search(
                [seed * 1000 + i for i in range(len(rates))]
            ),
            "max_steps": per_trial,
            "eval_every": budget.eval_every,
            "checkpoint": method == "pbt",
        }
        # One rate per stream: a grid over pairs.
        config["learning_rate"] = tune.sample_from(
            lambda config: rates[config["stream"] - seed * 1000]
        )
        tuner = tune.Tuner(
            tune.with_resources(choose_trial, {"cpu": 1}),
            param_space=config,
            tune_config=tune.TuneConfig(
                scheduler=scheduler,
                num_samples=1,
                max_concurrent_trials=1,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=f"{method}_{workload}_seed{seed}",
                storage_path=self.storage,
                stop=_BudgetStopper(per_trial, budget.steps),
                callbacks=[collector],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
                verbose=0,
            ),
        )
        grid = tuner.fit()
        errors = [r.error for r in grid if r.error is not None]
        if errors:
            raise RuntimeError(
                f"{method} on {workload}, seed {seed}: {len(errors)} "
                f"trial(s) failed: {errors[0]}"
            )
        return {"rates": rates, "results": collector.results}


def _log_spaced(low: float, high: float, count: int) -> list[float]:
    exponents = np.linspace(math.log10(low), math.log10(high), count)
    return [float(10.0**e) for e in exponents]


def _stopper_base():
    from ray import tune

    return tune.Stopper


class _BudgetStopper:
    """Ends a trial at `max_steps` and the search at `budget` steps
    reported in all (made a `tune.Stopper` on first use)."""

    def __new__(cls, max_steps: int, budget: int):
        base = _stopper_base()

        class BudgetStopper(base):
            def __init__(self):
                self.spent = 0

            def __call__(self, trial_id, result):
                self.spent += int(result["trained"])
                return result["steps"] >= max_steps

            def stop_all(self):
                return self.spent >= budget

        return BudgetStopper()


class _Collector:
    """Every trial result, in the order Ray processed them (made a
    `tune.Callback` on first use)."""

    def __new__(cls):
        from ray import tune

        class Collector(tune.Callback):
            def __init__(self):
                self.results = []

            def on_trial_result(self, iteration, trials, trial, result, **info):
                self.results.append(
                    {
                        "trial": trial.trial_id,
                        "learning_rate": float(result["learning_rate"]),
                        "steps": int(result["steps"]),
                        "trained": int(result["trained"]),
                        **{
                            k: float(v)
                            for k, v in result.items()
                            if k.startswith(("val_", "test_"))
                        },
                    }
                )

        return Collector()
