"""PBT and a SIGKILLed trial on Ray Tune, run for real (Ray local, 2 CPUs).

Both runs train the reproduction's digits MLP (43 steps an epoch at batch
32) under Adam with one epoch of linear warmup then cosine decay, plus
`ReduceLROnPlateau` and `BatchSizeScheduler` (the loader), so that every
kind of keras_lr state goes through the checkpoints.
"""

import json
import math
import os

import pytest

from keras_lr_experiments import tune as digits_tune

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


@pytest.fixture(scope="module")
def ray_local():
    import ray

    digits_tune.start_ray(None, num_cpus=2)
    try:
        yield
    finally:
        ray.shutdown()


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


def test_exploit_continues_from_the_donors_exact_state(ray_local, tmp_path):
    # Two trials, one far too slow; at epoch 2 the worse takes the
    # better's checkpoint and twice its rate (factor fixed, no resampling).
    trials = digits_tune.run_pbt(
        population=2,
        epochs=EPOCHS,
        perturbation_interval=2,
        seed=0,
        storage_path=tmp_path,
        initial_rates=[0.01, 0.0003],
        schedule="warmup_cosine",
        plateau=True,
        quantile_fraction=0.5,
        perturbation_factors=(2.0, 2.0),
        resample_probability=0.0,
    )
    assert [t["error"] for t in trials] == [None, None]
    by_id = {t["trial_id"]: t for t in trials}
    exploited = [t for t in trials if digits_tune.exploits(t)]
    assert len(exploited) == 1
    trial = exploited[0]
    (event,) = digits_tune.exploits(trial)
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


def test_sigkilled_trial_resumes_from_its_last_checkpoint(ray_local, tmp_path):
    # Two identical trials; the first to reach batch 10 of epoch 3 kills
    # its own process with SIGKILL. Ray restarts it from its epoch-2
    # checkpoint; it must end exactly as its twin that was never killed.
    trials = digits_tune.run_grid(
        rates=[0.01, 0.01],
        epochs=EPOCHS,
        seed=0,
        storage_path=tmp_path,
        schedule="warmup_cosine",
        plateau=True,
        kill_at=[2, 10],
        max_failures=1,
    )
    assert (tmp_path / "killed").exists()
    assert [t["error"] for t in trials] == [None, None]
    restarted = [
        t for t in trials if any(r["restored_from_trial"] for r in t["history"])
    ]
    assert len(restarted) == 1
    killed = restarted[0]
    twin = next(t for t in trials if t is not killed)
    for each in trials:
        assert [r["epoch"] for r in each["history"]] == [1, 2, 3, 4]
    resumed = [r for r in killed["history"] if r["restored_from_epoch"] == 2]
    assert [r["epoch"] for r in resumed] == [3, 4]
    assert all(r["restored_from_trial"] == killed["trial_id"] for r in resumed)
    assert resumed[0]["start_iterations"] == 2 * STEPS
    for key in ("loss", "val_loss", "val_accuracy", "learning_rate"):
        assert [r[key] for r in killed["history"]] == [
            r[key] for r in twin["history"]
        ], key
    final = _checkpoints(killed)[4]["state"]["callbacks"]
    assert final == _checkpoints(twin)[4]["state"]["callbacks"]


def test_cli_run_keeps_rays_files_in_storage(ray_local, tmp_path):
    from keras_lr_experiments import cli

    out, storage = tmp_path / "out", tmp_path / "storage"
    code = cli.main(
        [
            "tune",
            "--population",
            "2",
            "--epochs",
            "2",
            "--perturbation-interval",
            "1",
            "--out",
            str(out),
            "--storage",
            str(storage),
        ]
    )
    assert code == 0
    assert sorted(os.listdir(out)) == [
        "population_lr_seed0.png",
        "trials_pbt_seed0.json",
    ]
    assert os.listdir(storage) == ["pbt_seed0"]
    with open(out / "trials_pbt_seed0.json") as file:
        trials = json.load(file)
    assert len(trials) == 2
    for trial in trials:
        assert trial["error"] is None
        assert [r["epoch"] for r in trial["history"]] == [1, 2]
