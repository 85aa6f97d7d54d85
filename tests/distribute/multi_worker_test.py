"""keras_lr under `MultiWorkerMirroredStrategy`: two worker processes on
this machine (loopback ports in `TF_CONFIG`, CPU, gRPC collectives),
compared with each other and with one process on the same global batch.

Every scenario of `worker.py` runs in one start of the cluster (a worker
costs seconds to start), next to the one-process reference run.
"""

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.distribute import harness

WORKER = os.path.join(os.path.dirname(__file__), "worker.py")
MAIN = (
    "schedule,cyclic,one_cycle,plateau,divergence,batch_growth,"
    "plateau_growth,raise_in_fit,loader_fit,shards,range_test,race,"
    "bad_batch,backup"
)
STEPS_PER_EPOCH = 4  # 64 samples in global batches of 16


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(worker 0's, worker 1's, the single process's) results."""
    multi = tmp_path_factory.mktemp("multi")
    single = tmp_path_factory.mktemp("single")
    with ThreadPoolExecutor(2) as pool:
        workers = pool.submit(harness.run_workers, WORKER, [MAIN, multi], multi)
        one = pool.submit(harness.run_single, WORKER, [MAIN, single], single)
        w0, w1 = workers.result()
        reference = one.result()
    for name in MAIN.split(","):
        for result in (w0, w1, reference):
            assert "error" not in result[name], result[name]["error"]
    return w0, w1, reference, multi


def check_weights(a, b, rtol=1e-5, atol=1e-6):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def check_same_run(w0, w1, reference, name):
    """Both workers: the same rate, momentum and batch size at every step,
    to the bit, and the same logs and weights; all as in one process with
    the same global batch (to float tolerance)."""
    a, b, ref = w0[name], w1[name], reference[name]
    assert a["steps"] == b["steps"]
    assert a["epochs"] == b["epochs"]
    assert a["weights"] == b["weights"]
    assert sorted(a["steps"], key=int) == sorted(ref["steps"], key=int)
    for step, row in ref["steps"].items():
        for key, value in row.items():
            assert a["steps"][step][key] == pytest.approx(value, rel=1e-6), (
                step,
                key,
            )
    for got, want in zip(a["epochs"], ref["epochs"]):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    check_weights(a["weights"], ref["weights"])


def per_step(result, key) -> list:
    return [result["steps"][str(i)][key] for i in range(len(result["steps"]))]


def rates(result) -> list[float]:
    return per_step(result, "lr")


def test_cluster_roles(runs):
    w0, w1, reference, _ = runs
    assert (w0["num_workers"], w0["task_id"], w0["is_chief"]) == (2, 0, True)
    assert (w1["num_workers"], w1["task_id"], w1["is_chief"]) == (2, 1, False)
    assert w0["multi_worker"] and w1["multi_worker"]
    assert (reference["num_workers"], reference["is_chief"]) == (1, True)


def test_schedule_is_the_same_everywhere(runs):
    """Warmup over 4 steps to 0.05, then cosine over 12 to alpha=0.1."""
    w0, w1, reference, _ = runs
    check_same_run(w0, w1, reference, "schedule")

    def closed_form(step):
        if step < 4:
            return 0.05 * step / 4
        t = min(step - 4, 12) / 12
        return 0.05 * (0.9 * 0.5 * (1 + math.cos(math.pi * t)) + 0.1)

    got = rates(w0["schedule"])
    assert len(got) == 4 * STEPS_PER_EPOCH
    for step, value in enumerate(got):
        assert value == pytest.approx(closed_form(step), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", ["cyclic", "one_cycle"])
def test_cycles_are_the_same_everywhere(runs, name):
    w0, w1, reference, _ = runs
    check_same_run(w0, w1, reference, name)
    if name == "cyclic":
        # Triangular between 0.001 and 0.05, half-cycles of 3 steps.
        for step, value in enumerate(rates(w0[name])):
            x = abs(step / 3 % 2 - 1)
            assert value == pytest.approx(0.001 + 0.049 * (1 - x), rel=1e-6)
    else:
        got = rates(w0[name])
        assert max(got) == pytest.approx(0.1, rel=1e-2)
        assert got[0] == pytest.approx(0.004, rel=1e-6)


def test_plateau_cuts_and_backtracks_on_every_worker(runs):
    """Epoch 1 is the best; every later epoch is bad (patience 1): a cut
    at the end of epochs 2 and 3, restoring epoch 1's weights."""
    w0, w1, reference, _ = runs
    check_same_run(w0, w1, reference, "plateau")
    per_epoch = rates(w0["plateau"])[::STEPS_PER_EPOCH]
    assert per_epoch == pytest.approx([0.05, 0.05, 0.025, 0.0125], rel=1e-7)
    assert w0["plateau"]["best_epoch"] == w1["plateau"]["best_epoch"] == 0


def test_divergence_on_one_worker_rolls_back_every_worker(runs):
    """Only worker 1's outputs blow up in epoch 3; the logged loss, reduced
    over the workers, shows it on both, and both roll back and cut."""
    w0, w1, _, _ = runs
    a, b = w0["divergence"], w1["divergence"]
    assert (a["worker"], b["worker"]) == (0, 1)
    assert a["steps"] == b["steps"]
    assert a["epochs"] == b["epochs"]
    assert a["weights"] == b["weights"]
    losses = [e["loss"] for e in a["epochs"]]
    assert losses[2] > 4 * min(losses[:2])
    assert a["rollbacks"] == b["rollbacks"] == 1
    # Rolled back to epoch 2 (index 1); epoch 4 is good again.
    assert a["last_good_epoch"] == b["last_good_epoch"] == 3
    per_epoch = rates(a)[::STEPS_PER_EPOCH]
    assert per_epoch == pytest.approx([0.05, 0.05, 0.05, 0.025], rel=1e-7)


def test_batch_growth_is_the_same_everywhere(runs):
    """Global batches of 8, 16, then the capped 16 with the rate halved;
    each worker trains on half of each."""
    w0, w1, reference, _ = runs
    check_same_run(w0, w1, reference, "batch_growth")
    sizes = per_step(w0["batch_growth"], "batch_size")
    assert sizes == [8] * 12 + [16] * 18
    assert rates(w0["batch_growth"])[-1] == pytest.approx(0.025, rel=1e-7)


def test_batch_growth_on_plateau_is_decided_the_same_everywhere(runs):
    """IncreaseBatchSizeOnPlateau reads the loss reduced over the workers:
    both grow the global batch after epoch 2 and halve the rate at the cap
    after epoch 3, at the same steps as one process."""
    w0, w1, reference, _ = runs
    check_same_run(w0, w1, reference, "plateau_growth")
    sizes = per_step(w0["plateau_growth"], "batch_size")
    assert sizes == [8] * 24 + [16] * 12
    lrs = rates(w0["plateau_growth"])
    assert lrs[:30] == pytest.approx([0.05] * 30, rel=1e-7)
    assert lrs[30:] == pytest.approx([0.025] * 6, rel=1e-7)


def test_fit_that_raises_releases_the_waiting_pipeline(runs):
    """A `fit` raising at epoch 0's end, while each worker's pipeline has
    read ahead and waits for epoch 1 to open (without the release, the
    worker hangs when the iterator is deleted): the error reaches the
    caller, and a second `fit` trains two more epochs from step 4, the
    same on both workers and as in one process."""
    w0, w1, reference, _ = runs
    for result in (w0, w1, reference):
        assert result["raise_in_fit"]["raised"] == (
            "stopped at the end of epoch 0"
        )
    check_same_run(w0, w1, reference, "raise_in_fit")
    steps = w0["raise_in_fit"]["steps"]
    assert sorted(map(int, steps)) == list(range(4, 4 + 2 * STEPS_PER_EPOCH))
    assert {row["batch_size"] for row in steps.values()} == {16}


def test_fit_on_the_loader_itself_is_the_same_everywhere(runs):
    """`fit(loader)`: Keras splits each global batch over the replicas;
    with batches that split evenly both workers take the same steps as
    one process (batch 8, then 16, then the rate halved at the cap). The
    default cap (N / 10 = 9) becomes 8, the largest size that splits,
    and a batch of 15 is refused before the first step."""
    w0, w1, reference, _ = runs
    check_same_run(w0, w1, reference, "loader_fit")
    sizes = per_step(w0["loader_fit"], "batch_size")
    assert sizes == [8] * 12 + [16] * 12
    assert rates(w0["loader_fit"])[-1] == pytest.approx(0.025, rel=1e-7)
    assert w0["loader_fit"]["auto_cap"] == w1["loader_fit"]["auto_cap"] == 8
    assert reference["loader_fit"]["auto_cap"] == 9
    assert w0["loader_fit"]["odd"] == w1["loader_fit"]["odd"]
    assert "must be a multiple of the 2 replicas" in w0["loader_fit"]["odd"]
    assert w0["loader_fit"]["odd"].endswith("Received: batch_size=15")
    assert reference["loader_fit"]["odd"] is None


def test_every_sample_once_per_epoch_across_workers(runs):
    """Each worker serves its half of every global batch; together, each
    epoch's permutation exactly once, as one process serves it."""
    w0, w1, reference, _ = runs
    for epoch, size in enumerate((4, 8, 16)):
        a = w0["shards"]["epochs"][epoch]
        b = w1["shards"]["epochs"][epoch]
        one = reference["shards"]["epochs"][epoch]["ids"]
        assert a["sizes"] == b["sizes"] == [size // 2] * (48 // size)
        assert sorted(a["ids"] + b["ids"]) == list(range(48))
        half = size // 2
        for k in range(48 // size):
            both = a["ids"][k * half : (k + 1) * half] + (
                b["ids"][k * half : (k + 1) * half]
            )
            assert both == one[k * size : (k + 1) * size]


def test_range_test_gives_one_curve(runs):
    """The per-step losses are the global batch's on both workers (the
    record is summed over the workers when read), as in one process."""
    w0, w1, reference, _ = runs
    a, b, ref = w0["range_test"], w1["range_test"], reference["range_test"]
    assert a == b
    assert a["learning_rates"] == ref["learning_rates"]
    assert a["stop_reason"] == ref["stop_reason"]
    np.testing.assert_allclose(a["losses"], ref["losses"], rtol=1e-5)
    assert a["suggestion"] == pytest.approx(ref["suggestion"], rel=1e-6)
    assert a["restored"] and b["restored"]
    assert a["rate_after"] == pytest.approx(0.01)


def test_race_gives_one_answer(runs):
    """The race: the same candidates, held-out scores and winner on both
    workers, as in one process; the model restored on both."""
    w0, w1, reference, _ = runs
    a, b, ref = w0["race"], w1["race"], reference["race"]
    assert a == b
    np.testing.assert_allclose(
        a["range_test_losses"], ref["range_test_losses"], rtol=1e-5
    )
    np.testing.assert_allclose(a["candidates"], ref["candidates"], rtol=1e-6)
    assert a["winner"] == pytest.approx(ref["winner"], rel=1e-6)
    assert [e[1:3] for e in a["entries"]] == [e[1:3] for e in ref["entries"]]
    np.testing.assert_allclose(
        [e[0] for e in a["entries"]], [e[0] for e in ref["entries"]], rtol=1e-6
    )
    np.testing.assert_allclose(
        [e[3] for e in a["entries"]], [e[3] for e in ref["entries"]], rtol=1e-4
    )
    assert a["restored"] and b["restored"]
    assert a["rate_after"] == pytest.approx(0.01)


def test_batch_that_does_not_split_is_refused(runs):
    w0, w1, reference, _ = runs
    answers = w0["bad_batch"]
    assert answers == w1["bad_batch"]
    assert "Argument `batch_size` must be a multiple of the 2 replicas" in (
        answers["odd"]
    )
    assert answers["odd"].endswith("Received: batch_size=15")
    assert "61 samples in batches of 24 leave 13" in answers["last_batch"]
    assert answers["last_batch"].endswith("Received: batch_size=24")
    assert answers["request"].endswith("Received: batch_size=9")
    # One process splits nothing.
    assert reference["bad_batch"] == {
        "odd": None,
        "last_batch": None,
        "request": None,
    }


def test_backup_is_written_by_the_chief(runs):
    w0, w1, reference, multi = runs
    check_same_run(w0, w1, reference, "backup")
    assert w0["backup"]["write_dir"] == "backup"
    assert w1["backup"]["write_dir"] == os.path.join("backup", "workertemp_1")
    for files in w0["backup"]["files"]:
        assert "state.json" in files
        assert sum(f.startswith("ckpt-") for f in files) == 1
    # Both ends cleaned up: the chief its backup, worker 1 its folder.
    assert not os.path.exists(multi / "backup")


@pytest.mark.parametrize(
    "victim",
    [0, pytest.param(1, marks=pytest.mark.slow)],
    ids=["chief", "worker"],
)
def test_killed_worker_resumes_exactly(runs, tmp_path, victim):
    """One worker is killed with SIGKILL mid-epoch (the other, stuck in a
    collective, is killed too); both restart and follow the uninterrupted
    run to the same weights, the survivor lagging at the end."""
    w0, _, _, _ = runs
    expected = w0["backup"]
    killed = harness.run_workers(
        WORKER,
        ["backup", tmp_path],
        tmp_path,
        worker_env={victim: {"KERAS_LR_KILL_AT": "3,1"}},
        allow_kill=True,
    )
    assert killed[victim] is None
    assert os.path.exists(tmp_path / "backup" / "state.json")
    # The other worker lags at the end: it writes its last backup after
    # the chief has removed the folder, and the folder still ends removed.
    r0, r1 = harness.run_workers(
        WORKER,
        ["backup", tmp_path],
        tmp_path,
        worker_env={1 - victim: {"KERAS_LR_LAG_AT_END": "2"}},
    )
    a, b = r0["backup"], r1["backup"]
    for result in a, b:
        assert "error" not in result, result["error"]
    assert a["steps"] == b["steps"]
    assert a["weights"] == b["weights"]
    first = min(int(s) for s in a["steps"])
    # Resumed at the killed step, not from scratch.
    assert first > 0
    for step, row in a["steps"].items():
        for key, value in row.items():
            want = expected["steps"][step][key]
            assert value == pytest.approx(want, rel=1e-6), (step, key)
    assert sorted(a["steps"], key=int) == [
        s for s in sorted(expected["steps"], key=int) if int(s) >= first
    ]
    check_weights(a["weights"], expected["weights"], rtol=1e-6, atol=1e-7)
    assert not os.path.exists(tmp_path / "backup")


def test_worker_that_never_starts_times_out(tmp_path):
    """`TF_CONFIG` names two workers; only worker 0 starts."""
    (result,) = harness.run_workers(
        WORKER,
        ["schedule", tmp_path],
        tmp_path,
        start=[0],
        env={"KERAS_LR_STARTUP_TIMEOUT": "3"},
        timeout=60,
    )
    message = result["startup_error"]
    assert message.startswith(
        "The cluster of `TF_CONFIG` did not start within 3 s: no answer "
        "from worker 1 at localhost:"
    )
    assert "schedule" not in result
