"""Part `choose`: the budget every way spends, the table, the files.

The fast tests run one small workload without Ray on a tiny budget; the
slow one runs `keras-lr reproduce --parts choose --quick` end to end
(all five workloads, PBT and ASHA on Ray when it is installed).
"""

import dataclasses
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_lr_experiments.choose import budget as budgets
from keras_lr_experiments.choose import table
from keras_lr_experiments.choose import ways
from keras_lr_experiments.choose.workloads import WORKLOADS

ROOT = str(Path(__file__).resolve().parents[2])
TINY = dataclasses.replace(
    budgets.QUICK,
    steps=32,
    eval_every=8,
    range_test_steps=10,
    race_budget=12,
    grid_rates=3,
    grid_range=(1e-3, 1e-1),
)
RESULT_COLUMNS = [
    "rank",
    "way",
    "test loss",
    "test accuracy",
    "steps to target",
    "reached",
    "search steps",
    "steps",
    "rate(s)",
]


def _run(out, names=("tabular",), use_ray=False, budget=TINY):
    from keras_lr_experiments.choose import runner

    stream = io.StringIO()
    summary = runner.run_choose(
        out,
        budget,
        "keras-lr reproduce --parts choose (test)",
        stream=stream,
        names=names,
        use_ray=use_ray,
    )
    return summary, stream.getvalue()


def _records(folder: Path) -> list[dict]:
    return [
        json.loads(path.read_text())
        for path in sorted((folder / "runs").rglob("*.json"))
    ]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("choose")
    summary, lines = _run(out)
    return out / "choose", summary, lines


def test_every_way_spends_the_budget_search_included(tiny_run):
    folder, _, _ = tiny_run
    records = _records(folder)
    local = [r for r in records if r["way"] in ways.LOCAL_WAYS]
    assert {r["way"] for r in local} == set(ways.LOCAL_WAYS)
    for record in local:
        # Measured: the search by the counting model's train_step, the
        # training by the optimizer's iterations.
        assert record["search_steps"] + record["train_steps"] == TINY.steps
        assert record["steps"] == TINY.steps
        assert record["curve"][-1][0] == TINY.steps
    searching = {r["way"]: r["search_steps"] for r in local}
    # The range test's sweep (unless it diverged early), and the race's
    # own budget on top of a range test.
    assert 3 <= searching["valley"] <= TINY.range_test_steps
    assert searching["valley"] == searching["valley_one_cycle"]
    assert searching["race"] == searching["race_wsd"]
    assert TINY.race_budget < searching["race"]
    assert searching["race"] <= TINY.race_budget + TINY.range_test_steps
    for way in ("keras_default", "article_adam", "schedule_free"):
        assert searching[way] == 0
    grid = [r for r in records if r["way"] == "grid"]
    assert len(grid) == TINY.grid_rates
    assert all(r["steps"] == TINY.steps for r in grid)


def test_the_step_counter_counts_fit_steps_through_a_restore():
    import keras

    import keras_lr

    counter = budgets.StepCounter()
    inputs = keras.Input((3,))
    model = counter.model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert counter.count == 8
    keras_lr.find_learning_rate(
        model, x, y, batch_size=16, num_steps=12, end_lr=1.0, warn=False
    )
    # The range test restores every model and optimizer variable; the
    # count is not one of them.
    assert counter.count == 8 + 12
    assert int(model.optimizer.iterations.numpy()) == 8


def test_the_table_has_its_columns_and_the_target_is_the_grids(tiny_run):
    folder, summary, lines = tiny_run
    text = (folder / "results.md").read_text()
    header = "| " + " | ".join(RESULT_COLUMNS) + " |"
    assert header in text
    assert "keras-lr reproduce --parts choose (test)" in text
    assert "skipped (no Ray)" in text
    assert "Ray is not installed" in lines
    entry = summary["workloads"]["tabular"]
    grid = [r for r in _records(folder) if r["way"] == "grid"]
    best = min(grid, key=lambda r: r["final"]["val_loss"])
    assert entry["target_test_loss"] == pytest.approx(
        1.1 * best["final"]["test_loss"]
    )
    ranked = entry["ranking"]
    assert set(ranked) == set(ways.LOCAL_WAYS)
    means = [entry["ways"][w]["test_loss_mean"] for w in ranked]
    assert means == sorted(means)
    assert (folder / "performance_profile.png").stat().st_size > 10_000
    assert (folder / "curves.png").stat().st_size > 10_000
    saved = json.loads((folder / "summary.json").read_text())
    assert saved["budget"]["steps"] == TINY.steps
    assert set(saved["workloads"]) == {"tabular"}


def test_a_rerun_skips_every_finished_run(tiny_run, tmp_path):
    folder, summary, _ = tiny_run
    before = {p: p.stat().st_mtime_ns for p in (folder / "runs").rglob("*")}
    again, lines = _run(folder.parent)
    assert lines.count("complete before: skipped") == len(
        [p for p in before if p.suffix == ".json"]
    )
    after = {p: p.stat().st_mtime_ns for p in (folder / "runs").rglob("*")}
    assert after == before
    assert again["workloads"] == json.loads(json.dumps(summary["workloads"]))


def test_the_seeded_ways_repeat_digit_for_digit(tiny_run, tmp_path):
    folder, _, _ = tiny_run
    _run(tmp_path)
    first = {
        (r["way"], r["learning_rate"]): r["curve"] for r in _records(folder)
    }
    second = {
        (r["way"], r["learning_rate"]): r["curve"]
        for r in _records(tmp_path / "choose")
    }
    assert second == first


def test_steps_to_target_and_the_grid_reference_by_hand():
    curve = [[10, 0.9, 1.0, 0.1], [20, 0.5, 0.6, 0.5], [30, 0.4, 0.45, 0.6]]
    assert table.steps_to_target(curve, 0.6) == 20
    assert table.steps_to_target(curve, 0.44) is None
    assert table.steps_to_target(curve, None) is None
    assert table._median_steps([20, None, 40]) == 40
    assert table._median_steps([20, None, None]) is None

    class Workload:
        name = "w"

    small = dataclasses.replace(TINY, grid_rates=2, grid_seeds=(0,))
    records = [
        {
            "way": "grid",
            "workload": "w",
            "seed": 0,
            "learning_rate": rate,
            "steps": 20,
            "curve": curve,
            "final": {"val_loss": curve[-1][1], "test_loss": curve[-1][2]},
        }
        for rate, curve in (
            (0.1, [[10, 0.8, 0.9, 0], [20, 0.3, 0.35, 0]]),
            (0.01, [[10, 0.5, 0.55, 0], [20, 0.4, 0.42, 0]]),
        )
    ]
    (grid,) = table.grid_records(records, Workload, small)
    # Both rates' steps; at each point the best validation loss so far.
    assert grid["steps"] == 40
    assert grid["curve"] == [[20, 0.5, 0.55, 0], [40, 0.3, 0.35, 0]]
    assert grid["learning_rate"] == 0.1


def test_the_population_record_counts_every_trial_and_keeps_the_best():
    class Workload:
        name = "w"
        metric = "accuracy"

    results = [
        {
            "trial": "a",
            "learning_rate": 0.1,
            "steps": 8,
            "trained": 8,
            "val_loss": 0.9,
            "test_loss": 1.0,
            "test_accuracy": 0.5,
        },
        {
            "trial": "b",
            "learning_rate": 0.01,
            "steps": 8,
            "trained": 8,
            "val_loss": 0.7,
            "test_loss": 0.8,
            "test_accuracy": 0.6,
        },
        {
            "trial": "a",
            "learning_rate": 0.1,
            "steps": 16,
            "trained": 8,
            "val_loss": 0.5,
            "test_loss": 0.4,
            "test_accuracy": 0.9,
        },
    ]
    record = ways.population_record(
        "asha", Workload, 0, {"results": results}, 1.0
    )
    assert record["steps"] == 24
    assert [p[0] for p in record["curve"]] == [8, 16, 24]
    assert [p[2] for p in record["curve"]] == [1.0, 0.8, 0.4]
    assert record["learning_rate"] == 0.1
    assert record["final"]["test_accuracy"] == 0.9


def test_bad_part_name_is_one_line_and_exit_2(capsys):
    from keras_lr_experiments import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["reproduce", "--parts", "chose"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "choose" in err


@pytest.mark.slow
def test_quick_part_choose_end_to_end(tmp_path):
    env = {k: v for k, v in os.environ.items()}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_lr_experiments",
            "reproduce",
            "--parts",
            "choose",
            "--quick",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "choose"
    for name in (
        "results.md",
        "summary.json",
        "performance_profile.png",
        "curves.png",
    ):
        assert (folder / name).is_file()
    text = (folder / "results.md").read_text()
    assert "| " + " | ".join(RESULT_COLUMNS) + " |" in text
    assert "| test rmse |" in text
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["workloads"]) == set(WORKLOADS)
    ray = importlib.util.find_spec("ray") is not None
    assert summary["ray_ran"] == ray
    records = _records(folder)
    expected = set(ways.LOCAL_WAYS) | ({"pbt", "asha"} if ray else set())
    for workload in WORKLOADS:
        mine = [r for r in records if r["workload"] == workload]
        assert {r["way"] for r in mine} - {"grid"} == expected
        for record in mine:
            assert record["steps"] == budgets.QUICK.steps, record["way"]
        for way in expected:
            assert summary["workloads"][workload]["ways"][way]["steps"] == [
                budgets.QUICK.steps
            ]
    assert math.isfinite(summary["workloads"]["digits_mlp"]["target_test_loss"])
    progress = [line for line in done.stdout.splitlines() if "left ~" in line]
    assert len(progress) == len(records)


def test_a_run_off_the_budget_is_an_error_not_a_row():
    from keras_lr_experiments.choose import runner

    record = {"workload": "w", "way": "asha", "seed": 1, "steps": 300}
    with pytest.raises(RuntimeError, match="spent 300 steps .* budget's 32"):
        runner.check_budget(record, TINY)
    runner.check_budget(dict(record, steps=TINY.steps), TINY)
