"""PBT and SIGKILLed trials on Ray Tune, run for real (Ray local, 2 CPUs).

Both runs train a digits MLP (64-64-10; 1,347 digits, 43 steps an epoch
at batch 32; 450 to validate) under Adam with one epoch of linear warmup
then cosine decay, plus `ReduceLROnPlateau` and `BatchSizeScheduler` (the
loader), so that every kind of keras_lr state goes through
`keras_lr.tune.ReportAndCheckpoint`'s checkpoints. The trial and the
searches are written here on keras_lr and Ray alone.
"""

import json
import math
import os
import random
import signal
import time

import keras
import pytest

from tests.repository import ROOT

# Under JAX and PyTorch the Ray searches run with `-m slow` only (each
# takes one to two minutes on a busy 2-core machine).
slow_elsewhere = (
    (lambda test: test)
    if keras.backend.backend() == "tensorflow"
    else pytest.mark.slow
)

TRAIN = 1347
BATCH = 32
STEPS = 43  # ceil(1347 / 32)
EPOCHS = 4


def closed_form(step: int, peak: float, epochs: int = EPOCHS) -> float:
    """Keras' CosineDecay(0, decay_steps, warmup_target=peak,
    warmup_steps=STEPS) written out: linear warmup, then cosine to 0."""
    if step < STEPS:
        return peak * step / STEPS
    decay = STEPS * (epochs - 1)
    done = min(step - STEPS, decay) / decay
    return peak * 0.5 * (1.0 + math.cos(math.pi * done))


# Where the killed trials kill themselves: batch 10 of epoch 3 (0-based),
# while `ReportAndCheckpoint`'s thread hands epoch 2's report over.
KILL_AT = (2, 10)
# Bound on each wait for the other side of a kill: a broken run fails
# after it instead of hanging.
PATIENCE_S = 120.0


def _wait_for(condition) -> bool:
    """Polls `condition` until it holds (True) or `PATIENCE_S` passes."""
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _killed(marker: str) -> bool:
    """Whether the process whose id `marker` holds has died."""
    try:
        with open(marker) as file:
            pid = int(file.read())
    except (OSError, ValueError):  # Not there yet, or the id not written.
        return False
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _kill_once(mode: str, folder: str):
    """A callback that SIGKILLs its process at `KILL_AT`, once per `mode`
    (the marker `killed-<mode>` in `folder` records the process id).

    It kills once `_rendezvous` has written, on Ray's driver, that Ray
    registered the trial's epoch-2 checkpoint (`"after_registration"`)
    or that the driver holds the trial's epoch-2 result, not registered
    yet (`"before_registration"`).
    """
    import keras
    import ray.tune

    class KillOnce(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            marker = os.path.join(folder, f"killed-{mode}")
            if (self._epoch, batch) != KILL_AT or os.path.exists(marker):
                return
            trial = ray.tune.get_context().get_trial_id()
            event = "registered" if mode == "after_registration" else "held"
            ready = os.path.join(folder, f"{event}-{trial}-2")
            if not _wait_for(lambda: os.path.exists(ready)):
                raise RuntimeError(f"No {ready} after {PATIENCE_S} s")
            handle = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(handle, str(os.getpid()).encode())
            os.close(handle)
            os.kill(os.getpid(), signal.SIGKILL)

    return KillOnce()


def _rendezvous(folder: str):
    """A Tune callback on the driver, the other side of `_kill_once`.

    Ray's driver logs a trial's result (`on_trial_result`) and only then
    asks the trial, in a second call (its `save`), for the checkpoint
    that came with it, which it registers (`on_checkpoint` runs just
    before) and a restart restores from. The callback writes
    `registered-<trial>-<epoch>` at each registration (the driver's loop
    handles a trial's death only after the registration). On the epoch-2
    result of the `"before_registration"` trial it writes
    `held-<trial>-2` and holds the driver until that trial has died, then
    writes `held`: whether it did.
    """
    from ray import tune

    def touch(name: str) -> None:
        with open(os.path.join(folder, name), "w"):
            pass

    class Rendezvous(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            kill = trial.config["kill"]
            if kill != "before_registration" or result.get("epoch") != 2:
                return
            if os.path.exists(os.path.join(folder, "held")):
                return  # Epoch 2 again, after the restart.
            touch(f"held-{trial.trial_id}-2")
            marker = os.path.join(folder, f"killed-{kill}")
            killed = _wait_for(lambda: _killed(marker))
            with open(os.path.join(folder, "held"), "w") as file:
                file.write("killed" if killed else "not killed")

        def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
            with open(os.path.join(checkpoint.path, "keras_lr_tune.json")) as f:
                epoch = json.load(f)["epoch"]
            touch(f"registered-{trial.trial_id}-{epoch}")

    return Rendezvous()


def train(config: dict) -> None:
    """The Ray Tune function: the MLP at `config["learning_rate"]` (the
    schedule's peak), reported and checkpointed every epoch."""
    import keras
    from sklearn.datasets import load_digits

    import keras_lr
    import keras_lr.tune

    # An actor Ray reuses keeps the previous trial's graphs.
    keras.backend.clear_session()
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    keras.utils.set_random_seed(config["seed"])
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    schedule = keras_lr.schedules.CosineDecay(
        0.0,
        decay_steps=STEPS * (EPOCHS - 1),
        warmup_target=float(config["learning_rate"]),
        warmup_steps=STEPS,
    )
    model.compile(
        keras.optimizers.Adam(schedule),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    loader = keras_lr.data.GrowingBatchLoader(
        x[:TRAIN], y[:TRAIN], batch_size=BATCH, seed=config["seed"]
    )
    callbacks = [
        keras_lr.callbacks.BatchSizeScheduler(
            loader, lambda epoch, size: BATCH, max_batch_size=None
        ),
        keras_lr.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=1
        ),
    ]
    if config["kill"]:
        callbacks.append(_kill_once(config["kill"], config["folder"]))
    callbacks.append(keras_lr.tune.ReportAndCheckpoint(config))
    if keras.backend.backend() == "tensorflow":
        data = dict(
            x=loader.as_dataset(), steps_per_epoch=loader.steps_per_epoch
        )
    else:  # `as_dataset()` is `tf.data`'s; the loader is a `PyDataset`.
        data = dict(x=loader)
    model.fit(
        **data,
        epochs=EPOCHS,
        shuffle=False,
        validation_data=(x[TRAIN:], y[TRAIN:]),
        verbose=0,
        callbacks=callbacks,
    )


@pytest.fixture(scope="module")
def ray_local():
    import keras
    import ray

    env_vars = {
        "KERAS_BACKEND": keras.backend.backend(),
        # The trials import this module and keras_lr from this checkout.
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
        ),
        # Ray reuses a trial's process once the previous function has
        # stopped, at its next report: allow an epoch on a busy machine,
        # not Ray's 2 s.
        "TUNE_FUNCTION_THREAD_TIMEOUT_S": "120",
    }
    # Ray starts its workers at niceness 15: on a machine kept busy by
    # other work, the trials would get almost no CPU.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": env_vars},
    )
    try:
        yield
    finally:
        ray.shutdown()


def _trial(result) -> dict:
    """A trial's id, folder, error and reports in order, from Ray's
    progress.csv (appended to across restarts and exploits)."""
    import pandas

    rows = pandas.read_csv(
        os.path.join(result.path, "progress.csv"), keep_default_na=False
    ).to_dict("records")
    return {
        "trial_id": rows[0]["trial_id"],
        "kill": result.config["kill"],
        "path": result.path,
        "error": None if result.error is None else str(result.error),
        "history": rows,
    }


def search(
    storage, rates, scheduler=None, kills=("",), max_failures=0
) -> list[dict]:
    """One trial per rate and `kills` mode (`""`: not killed; see
    `_kill_once`), under `scheduler` (Ray's FIFO if None)."""
    from ray import tune

    config = {
        "learning_rate": tune.grid_search([float(r) for r in rates]),
        "seed": 0,
        "kill": tune.grid_search(list(kills)),
        "folder": str(storage),
    }
    tuner = tune.Tuner(
        tune.with_resources(train, {"cpu": 1}),
        param_space=config,
        tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=True),
        run_config=tune.RunConfig(
            name="search",
            storage_path=str(storage),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            verbose=0,
            callbacks=[_rendezvous(str(storage))] if any(kills) else None,
        ),
    )
    return [_trial(result) for result in tuner.fit()]


def exploits(trial: dict) -> list[dict]:
    """The restores of a trial from another trial's checkpoint."""
    seen = {}
    for row in trial["history"]:
        donor = row["restored_from_trial"]
        if donor and donor != trial["trial_id"]:
            key = (donor, row["restored_from_epoch"])
            seen.setdefault(key, {"donor": donor, "epoch": key[1]})
    return list(seen.values())


def _checkpoints(trial: dict) -> dict[int, dict]:
    """The trial's persisted checkpoints, by epoch: meta and backup."""
    found = {}
    for name in sorted(os.listdir(trial["path"])):
        if not name.startswith("checkpoint_"):
            continue
        folder = os.path.join(trial["path"], name)
        with open(os.path.join(folder, "keras_lr_tune.json")) as file:
            meta = json.load(file)
        with open(os.path.join(folder, "state.json")) as file:
            state = json.load(file)
        found[meta["epoch"]] = {"meta": meta, "state": state}
    return found


@pytest.mark.portable
@slow_elsewhere
def test_exploit_continues_from_the_donors_exact_state(ray_local, tmp_path):
    # Two trials, one far too slow; at epoch 2 the worse takes the
    # better's checkpoint and twice its rate (factor fixed, no resampling).
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    # PBT's explore draws from Python's `random`.
    random.seed(0)
    pbt = PopulationBasedTraining(
        time_attr="epoch",
        metric="val_loss",
        mode="min",
        perturbation_interval=2,
        hyperparam_mutations={"learning_rate": tune.loguniform(1e-4, 1e-1)},
        quantile_fraction=0.5,
        resample_probability=0.0,
        perturbation_factors=(2.0, 2.0),
        synch=True,
    )
    trials = search(tmp_path, [0.01, 0.0003], scheduler=pbt)
    assert [t["error"] for t in trials] == [None, None]
    by_id = {t["trial_id"]: t for t in trials}
    exploited = [t for t in trials if exploits(t)]
    assert len(exploited) == 1
    trial = exploited[0]
    (event,) = exploits(trial)
    donor = by_id[event["donor"]]
    assert event["epoch"] == 2

    # No lost or repeated epoch on either trial; steps follow the epochs.
    for each in trials:
        assert [r["epoch"] for r in each["history"]] == [1, 2, 3, 4]
        assert [r["iterations"] for r in each["history"]] == [
            STEPS * e for e in (1, 2, 3, 4)
        ]

    donor_row = donor["history"][1]
    after = [r for r in trial["history"] if r["restored_from_epoch"] == 2]
    assert [r["epoch"] for r in after] == [3, 4]
    first = after[0]
    # optimizer.iterations is the donor's at its checkpoint, not 0.
    assert first["start_iterations"] == donor_row["iterations"] == 2 * STEPS

    # The rate: the donor's at that step times the perturbation factor,
    # both against the closed form at step 86 (not restarted at 0).
    donor_checkpoint = _checkpoints(donor)[2]
    old = donor_checkpoint["meta"]["hyperparameters"]["learning_rate"]
    assert old == 0.01
    new_checkpoint = _checkpoints(trial)[3]
    new = new_checkpoint["meta"]["hyperparameters"]["learning_rate"]
    assert new == pytest.approx(2.0 * old, rel=1e-12)
    assert donor_row["learning_rate"] == pytest.approx(
        closed_form(2 * STEPS, old), rel=1e-6
    )
    assert first["start_learning_rate"] == pytest.approx(
        2.0 * donor_row["learning_rate"], rel=1e-6
    )
    assert first["start_learning_rate"] == pytest.approx(
        closed_form(2 * STEPS, new), rel=1e-6
    )
    # ... and continuous afterwards: the schedule of the new peak at the
    # trial's own steps, times the plateau factor it reports.
    for row in after:
        assert row["learning_rate"] == pytest.approx(
            closed_form(row["iterations"], new) * row["lr_multiplier"],
            rel=1e-6,
            abs=1e-12,
        )

    # Every keras_lr callback's state (plateau best and counters, batch
    # size, loader epoch and position) is the donor's at its checkpoint.
    start = json.loads(first["start_state"])
    theirs = donor_checkpoint["state"]["callbacks"]
    assert (
        start["callbacks"]["ReduceLROnPlateau"] == theirs["ReduceLROnPlateau"]
    )
    # The loader as it will serve next: epoch 2 (0-based) from its start,
    # as the donor left it. (The batch-size callback's own view of its
    # loader counts the steps of the epoch in progress from
    # `on_epoch_begin`, not run yet at `on_train_begin`.)
    assert (
        start["loaders"]["BatchSizeScheduler"]
        == theirs["BatchSizeScheduler"]["loader"]
    )
    assert theirs["BatchSizeScheduler"]["loader"]["epoch"] == 2
    mine = dict(start["callbacks"]["BatchSizeScheduler"])
    donors = dict(theirs["BatchSizeScheduler"])
    mine.pop("loader")
    donors.pop("loader")
    assert mine == donors
    start_state = start["callbacks"]
    plateau = start_state["ReduceLROnPlateau"]
    assert plateau["best"] == pytest.approx(donor_row["val_loss"], rel=1e-6)
    assert plateau["best"] != pytest.approx(
        trial["history"][1]["val_loss"], rel=1e-3
    )


@pytest.mark.portable
@slow_elsewhere
def test_sigkilled_trial_resumes_from_its_last_checkpoint(ray_local, tmp_path):
    # Three identical trials. Two kill their own process with SIGKILL at
    # batch 10 of epoch 3, while epoch 2's report is in flight: one once
    # Ray has registered epoch 2's checkpoint, the other while Ray holds
    # epoch 2's result and has not yet. Ray restarts each from the last
    # checkpoint it registered; both must end exactly as the third trial,
    # never killed.
    trials = search(
        tmp_path,
        [0.01],
        kills=["", "after_registration", "before_registration"],
        max_failures=1,
    )
    assert [t["error"] for t in trials] == [None, None, None]
    by_kill = {t["kill"]: t for t in trials}
    twin = by_kill[""]
    assert [r["epoch"] for r in twin["history"]] == [1, 2, 3, 4]
    assert {r["restored_from_trial"] for r in twin["history"]} == {""}
    keys = ("loss", "val_loss", "val_accuracy", "learning_rate", "iterations")
    expected = {key: [r[key] for r in twin["history"]] for key in keys}
    final = _checkpoints(twin)[4]["state"]["callbacks"]

    # Killed after the registration: resumed from epoch 2.
    after = by_kill["after_registration"]
    assert (tmp_path / "killed-after_registration").exists()
    history = after["history"]
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert [r["restored_from_epoch"] for r in history] == [-1, -1, 2, 2]
    assert {r["restored_from_trial"] for r in history[2:]} == {
        after["trial_id"]
    }
    assert history[2]["start_iterations"] == 2 * STEPS
    for key in keys:
        assert [r[key] for r in history] == expected[key], key
    assert _checkpoints(after)[4]["state"]["callbacks"] == final

    # Killed before it: Ray had logged epoch 2's result, with the name of
    # its checkpoint folder, and restarted the trial from epoch 1. Epoch 2
    # is trained again to the same numbers, and the history says so: Ray's
    # `training_iteration` goes back, and `restored_from_epoch` is 1.
    before = by_kill["before_registration"]
    # (A trial that waited for its report before training on could not
    # reach the kill while Ray holds the result.)
    assert (tmp_path / "held").read_text() == "killed"
    history = before["history"]
    assert [r["epoch"] for r in history] == [1, 2, 2, 3, 4]
    assert [r["training_iteration"] for r in history] == [1, 2, 2, 3, 4]
    assert history[1]["checkpoint_dir_name"] != ""
    assert [r["restored_from_epoch"] for r in history] == [-1, -1, 1, 1, 1]
    assert {r["restored_from_trial"] for r in history[2:]} == {
        before["trial_id"]
    }
    assert history[2]["start_iterations"] == STEPS
    last = {r["epoch"]: r for r in history}  # Each epoch's last report.
    for key in keys:
        assert history[2][key] == history[1][key], key
        assert [last[e][key] for e in (1, 2, 3, 4)] == expected[key], key
    assert _checkpoints(before)[4]["state"]["callbacks"] == final
