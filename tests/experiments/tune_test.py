"""`keras-lr tune`: the search space, reading trials back, and one search
through the command line on a local Ray."""

import json
import math
import os
import statistics

import pytest

from keras_lr_experiments import cli
from keras_lr_experiments.tune import results
from keras_lr_experiments.tune import search
from keras_lr_experiments.tune import space


def test_population_and_asha_rates_are_log_spaced():
    exponents = [-3.1875, -2.5625, -1.9375, -1.3125]
    assert space.population_rates(4) == pytest.approx(
        [10**e for e in exponents], rel=1e-12
    )
    assert space.population_rates(2) == pytest.approx(
        [10**-2.875, 10**-1.625], rel=1e-12
    )
    assert space.asha_rates(3) == pytest.approx(
        [10**-3.5, 10**-2.5, 10**-1.5], rel=1e-12
    )


def _row(epoch, val_loss, rate, donor="", donor_epoch=-1, iterations=0):
    return {
        "trial_id": "t",
        "epoch": epoch,
        "val_loss": val_loss,
        "val_accuracy": 1.0 - val_loss,
        "learning_rate": rate,
        "restored_from_trial": donor,
        "restored_from_epoch": donor_epoch,
        "start_learning_rate": rate,
        "start_iterations": iterations,
    }


def test_reading_a_trials_progress_back(tmp_path):
    (tmp_path / "progress.csv").write_text(
        "trial_id,epoch,val_loss,restored_from_trial,note\n"
        "a_00000,1,0.5,,x\n"
        "a_00000,2,0.25,b_00001,1e-3\n"
    )
    assert results.read_progress(str(tmp_path)) == [
        {
            "trial_id": "a_00000",
            "epoch": 1,
            "val_loss": 0.5,
            "restored_from_trial": "",
            "note": "x",
        },
        {
            "trial_id": "a_00000",
            "epoch": 2,
            "val_loss": 0.25,
            "restored_from_trial": "b_00001",
            "note": 0.001,
        },
    ]
    assert results.read_progress(str(tmp_path / "missing")) == []


def _trials():
    restored = _row(3, 0.2, 0.02, donor="b", donor_epoch=2, iterations=86)
    return [
        {
            "trial_id": "a",
            "config": {"learning_rate": 0.01},
            "error": None,
            "history": [
                _row(1, 0.9, 0.01),
                _row(2, 0.8, 0.01),
                restored,
                # Ray repeats the restore's fields until the next one.
                dict(restored, epoch=4, val_loss=0.1, val_accuracy=0.9),
            ],
        },
        {
            "trial_id": "b",
            "config": {"learning_rate": 0.001},
            "error": None,
            "history": [_row(e, 0.5 - 0.05 * e, 0.001) for e in (1, 2, 3, 4)],
        },
        {
            "trial_id": "c",
            "config": {"learning_rate": 0.1},
            "error": None,
            "history": [_row(1, 0.05, 0.1)],
        },
    ]


def test_exploits_budget_and_the_best_final_trial():
    trials = _trials()
    assert results.exploits(trials[0]) == [
        {"epoch": 2, "donor": "b", "start_learning_rate": 0.02}
    ]
    assert results.exploits(trials[1]) == []
    assert results.budget(trials) == 9
    # c's loss is lowest but it stopped after one epoch.
    assert results.final_score(trials) == {
        "trial_id": "a",
        "val_loss": 0.1,
        "val_accuracy": 0.9,
        "learning_rate": 0.02,
        "epochs": 4,
    }


def test_saved_trials_are_json_native(tmp_path):
    trials = _trials()[:1]
    trials[0]["config"].update(batch_size=32, seed=0, epochs=4)
    trials[0]["history"][0]["val_loss"] = math.nan
    path = tmp_path / "trials.json"
    results.save_trials(path, trials)
    (saved,) = json.loads(path.read_text())
    assert saved["config"] == trials[0]["config"]
    assert [r["epoch"] for r in saved["history"]] == [1, 2, 3, 4]
    assert saved["history"][0]["val_loss"] is None
    assert saved["history"][0]["lr_multiplier"] is None
    assert set(saved["history"][0]) == set(results.KEPT)
    assert [p.name for p in tmp_path.iterdir()] == ["trials.json"]


def test_summary_is_the_mean_and_sample_std_over_seeds():
    runs = [
        {
            "method": "pbt",
            "seed": seed,
            "trials": [None] * 4,
            "budget_epochs": 48,
            "best": {"val_loss": loss, "val_accuracy": 1 - loss},
            "exploits": 3,
            "wall_time_s": 10.0,
        }
        for seed, loss in enumerate([0.1, 0.2, 0.4])
    ]
    table = results.summarize(runs)
    assert list(table) == ["pbt"]
    row = table["pbt"]
    assert row["final_val_loss_mean"] == pytest.approx(0.7 / 3)
    assert row["final_val_loss_std"] == pytest.approx(
        statistics.stdev([0.1, 0.2, 0.4])
    )
    assert row["seeds"] == [0, 1, 2] and row["budget_epochs"] == [48] * 3


def test_run_pbt_rejects_unknown_mutation_before_starting(tmp_path):
    with pytest.raises(ValueError, match=r"\['lr'\]"):
        search.run_pbt(
            population=2,
            epochs=4,
            perturbation_interval=2,
            seed=0,
            storage_path=tmp_path,
            mutations=("lr",),
        )
    assert list(tmp_path.iterdir()) == []


def test_cli_run_keeps_rays_files_in_storage(tmp_path):
    import ray

    out, storage = tmp_path / "out", tmp_path / "storage"
    try:
        code = cli.main(
            [
                "tune", "--population", "2", "--epochs", "2",
                "--perturbation-interval", "1", "--num-cpus", "2",
                "--out", str(out), "--storage", str(storage),
            ]
        )  # fmt: skip
    finally:
        ray.shutdown()
    assert code == 0
    assert sorted(os.listdir(out)) == [
        "population_lr_seed0.png",
        "trials_pbt_seed0.json",
    ]
    assert os.listdir(storage) == ["pbt_seed0"]
    trials = json.loads((out / "trials_pbt_seed0.json").read_text())
    assert len(trials) == 2
    for trial in trials:
        assert trial["error"] is None
        assert [r["epoch"] for r in trial["history"]] == [1, 2]
