"""Training scenarios run by every worker of a local cluster (or by one
process, for the reference run with the same global batch).

python worker.py SCENARIO[,SCENARIO...] [WORK_DIR]

With `TF_CONFIG` set it trains under
`keras_lr.distribute.MultiWorkerMirroredStrategy`; without, in one
process. Each scenario returns a JSON-native dict; all of them go to the
file named by `KERAS_LR_RESULT`, as {scenario: result}. With
`KERAS_LR_KILL_AT=EPOCH,BATCH` the process sends itself SIGKILL at the
start of that batch of the `backup` scenario; with
`KERAS_LR_LAG_AT_END=SECONDS` it sleeps at the end of that scenario's last
epoch, before its own last backup (the chief may have removed the folder
by then). It beats the harness's watchdog (`harness.beat`) as it moves
on: after start-up, at each scenario and at each training step.
"""

import gc
import json
import os
import signal
import sys
import time
import traceback
import types

from tests.distribute import harness

START = time.monotonic()
harness.arm_stack_dump()
harness.beat()

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lr  # noqa: E402
from keras_lr import distribute  # noqa: E402

MULTI = "TF_CONFIG" in os.environ
EPOCHS = 4
SAMPLES = 64
BATCH = 16  # the global batch


def strategy():
    if not MULTI:
        return tf.distribute.get_strategy()
    timeout = float(os.environ.get("KERAS_LR_STARTUP_TIMEOUT", "60"))
    return distribute.MultiWorkerMirroredStrategy(startup_timeout=timeout)


def data(n=SAMPLES):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1)) + 0.1).astype("float32")
    return x, y


class Boost(keras.layers.Layer):
    """Multiplies its input by a non-trainable factor (1 unless a test
    raises it on one worker to inject a divergence there)."""

    def build(self, shape):
        self.factor = self.add_weight(
            shape=(), initializer="ones", trainable=False, name="factor"
        )

    def call(self, x):
        return x * self.factor


def model(optimizer, boost=False):
    keras.utils.set_random_seed(0)
    layers = [
        keras.Input((6,)),
        keras.layers.Dense(8, activation="tanh"),
        keras.layers.Dense(1),
    ]
    if boost:
        layers.append(Boost())
    m = keras.Sequential(layers)
    m.compile(optimizer, "mse")
    return m


class StepLog(keras.callbacks.Callback):
    """Rate, momentum and batch size at every step; loss at every epoch."""

    def __init__(self, loader=None, kill_at=None):
        super().__init__()
        self.loader = loader
        self.kill_at = kill_at
        self.steps = {}
        self.epochs = []
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        harness.beat()
        if self.kill_at == (self.epoch, batch):
            os.kill(os.getpid(), signal.SIGKILL)
        optimizer = self.model.optimizer
        row = {"lr": float(optimizer.learning_rate.numpy())}
        for name in ("momentum", "beta_1"):
            value = getattr(optimizer, name, None)
            if value is not None:
                row[name] = float(keras.ops.convert_to_tensor(value))
        if self.loader is not None:
            row["batch_size"] = self.loader.batch_size
        self.steps[int(optimizer.iterations.numpy())] = row

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(
            {k: float(v) for k, v in (logs or {}).items()}
        )


def fit(m, loader, callbacks, epochs=EPOCHS, kill_at=None, itself=False):
    """`m.fit` on `loader.as_dataset()` (on the loader itself when
    `itself`); the per-step log, the epoch logs and the weights."""
    log = StepLog(loader, kill_at)
    m.fit(
        loader if itself else loader.as_dataset(),
        steps_per_epoch=None if itself else loader.steps_per_epoch,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[*callbacks[:-1], log, callbacks[-1]]
        if callbacks and isinstance(
            callbacks[-1], keras_lr.callbacks.BackupAndRestore
        )
        else [*callbacks, log],
    )
    return {
        "steps": {str(k): v for k, v in sorted(log.steps.items())},
        "epochs": log.epochs,
        "weights": [w.ravel().tolist() for w in m.get_weights()],
    }


def fixed_loader(batch_size=BATCH, n=SAMPLES):
    x, y = data(n)
    loader = keras_lr.data.GrowingBatchLoader(
        x, y, batch_size=batch_size, seed=1
    )
    keep = keras_lr.callbacks.BatchSizeScheduler(loader, lambda e, size: size)
    return loader, keep


def scenario_schedule(s, work_dir):
    """Warmup + cosine decay, a schedule of the optimizer's step."""
    loader, keep = fixed_loader()
    with s.scope():
        schedule = keras_lr.schedules.LinearWarmup(
            keras_lr.schedules.CosineDecay(0.05, 12, alpha=0.1), 4
        )
        m = model(keras.optimizers.SGD(schedule, momentum=0.5))
        return fit(m, loader, [keep])


def scenario_cyclic(s, work_dir):
    loader, keep = fixed_loader()
    with s.scope():
        m = model(keras.optimizers.SGD(0.01, momentum=0.9))
        cyclic = keras_lr.callbacks.CyclicLR(0.001, 0.05, step_size=3)
        return fit(m, loader, [keep, cyclic])


def scenario_one_cycle(s, work_dir):
    loader, keep = fixed_loader()
    with s.scope():
        m = model(keras.optimizers.SGD(0.01, momentum=0.9))
        one_cycle = keras_lr.callbacks.OneCycleLR(0.1, total_steps=EPOCHS * 4)
        return fit(m, loader, [keep, one_cycle])


class CutLog(keras.callbacks.Callback):
    def __init__(self, plateau):
        super().__init__()
        self.plateau = plateau
        self.best_epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.best_epochs.append(self.plateau.best_epoch)


def scenario_plateau(s, work_dir):
    """Every epoch after the first is a bad one (min_delta larger than any
    change): a cut at each, with the weights of epoch 1 restored."""
    loader, keep = fixed_loader()
    with s.scope():
        m = model(keras.optimizers.SGD(0.05, momentum=0.5))
        plateau = keras_lr.callbacks.ReduceLROnPlateau(
            monitor="loss", factor=0.5, patience=1, min_delta=100.0,
            backtrack=True,
        )
        result = fit(m, loader, [keep, plateau, CutLog(plateau)])
        result["best_epoch"] = plateau.best_epoch
        return result


class Inject(keras.callbacks.Callback):
    """Raises the model's output factor during one epoch, on this worker."""

    def __init__(self, epoch, on):
        super().__init__()
        self.at = epoch
        self.on = on

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at and self.on:
            self.model.layers[-1].factor.assign(1e3)

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at and self.on:
            self.model.layers[-1].factor.assign(1.0)


def scenario_divergence(s, work_dir):
    """Worker 1's outputs blow up in epoch 2 only (in one process: the
    whole batch does); the guard rolls back on every worker."""
    loader, keep = fixed_loader()
    worker = distribute.task_id(s)
    with s.scope():
        m = model(keras.optimizers.SGD(0.05, momentum=0.5), boost=True)
        guard = keras_lr.callbacks.DivergenceGuard(factor=0.5, threshold=4.0)
        result = fit(m, loader, [keep, Inject(2, worker == 1), guard])
        result["rollbacks"] = guard.rollbacks
        result["last_good_epoch"] = guard.last_good_epoch
        result["worker"] = worker
        return result


def growth_run(s, **fit_args):
    """The global batch grows 8 -> 16 at epoch 1; at epoch 2 the target 32
    is past the cap of 16, so the rate halves instead (the hybrid). The
    loader, and `fit`'s result."""
    x, y = data(96)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=8, seed=1)
    with s.scope():
        m = model(keras.optimizers.SGD(0.05))
        grow = keras_lr.callbacks.BatchSizeScheduler(
            loader, keras_lr.callbacks.grow_batch_at([1, 2], 2.0),
            max_batch_size=16,
        )
        return loader, fit(m, loader, [grow], **fit_args)


def scenario_batch_growth(s, work_dir):
    """`growth_run` through `loader.as_dataset()`."""
    return growth_run(s)[1]


def scenario_plateau_growth(s, work_dir):
    """Every epoch after the first is bad (`min_delta` larger than any
    change, patience 1) by the loss reduced over the workers: the global
    batch doubles 8 -> 16 after epoch 2; after epoch 3 the target 32 is
    past the cap of 16, so the rate halves instead."""
    x, y = data(96)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=8, seed=1)
    with s.scope():
        m = model(keras.optimizers.SGD(0.05))
        grow = keras_lr.callbacks.IncreaseBatchSizeOnPlateau(
            loader, monitor="loss", mode="min", factor=2.0, patience=1,
            min_delta=100.0, max_batch_size=16,
        )
        return fit(m, loader, [grow])


def scenario_shards(s, work_dir):
    """The ids each worker serves, epoch by epoch, as the global batch
    grows (read from the distributed dataset itself)."""
    n = 48
    x = np.arange(n, dtype="float32")[:, None]
    loader = keras_lr.data.GrowingBatchLoader(x, x, batch_size=4, seed=3)
    with s.scope():
        dataset = loader.as_dataset()
    # What a batch-size callback does at the start of `fit`.
    loader.configure_for(
        types.SimpleNamespace(steps_per_execution=1, distribute_strategy=s)
    )
    iterator = iter(dataset)
    epochs = []
    for epoch, size in enumerate((4, 8, 16)):
        loader.begin_epoch(epoch, batch_size=size)
        ids, sizes = [], []
        for _ in range(loader.num_batches):
            batch = next(iterator)
            for part in s.experimental_local_results(batch[0]):
                values = part.numpy()[:, 0].astype(int).tolist()
                ids.extend(values)
                sizes.append(len(values))
        epochs.append({"ids": ids, "sizes": sizes})
    loader.end_training()
    return {"epochs": epochs}


def scenario_range_test(s, work_dir):
    x, y = data()
    with s.scope():
        m = model(keras.optimizers.SGD(0.01))
    before = [w.copy() for w in m.get_weights()]
    result = keras_lr.find_learning_rate(
        m, x, y, batch_size=BATCH, start_lr=1e-4, end_lr=10.0,
        num_steps=40, seed=0, warn=False,
    )
    after = m.get_weights()
    return {
        "losses": [float(v) for v in result.losses],
        "learning_rates": [float(v) for v in result.learning_rates],
        "stop_reason": result.stop_reason,
        "suggestion": float(result.suggestion()),
        "restored": all(np.array_equal(a, b) for a, b in zip(before, after)),
        "rate_after": float(m.optimizer.learning_rate.numpy()),
    }


def scenario_race(s, work_dir):
    x, y = data()
    with s.scope():
        m = model(keras.optimizers.SGD(0.01))
    before = [w.copy() for w in m.get_weights()]
    result = keras_lr.choose_learning_rate(
        m, x, y, batch_size=BATCH, budget=96, candidates=6, start_lr=1e-4,
        end_lr=10.0, num_steps=40, seed=0,
    )
    after = m.get_weights()
    return {
        "winner": float(result.learning_rate),
        "candidates": [float(v) for v in result.candidates],
        "entries": [
            [float(e["candidate"]), e["rung"], e["steps"], float(e["score"])]
            for e in result.entries
        ],
        "range_test_losses": [float(v) for v in result.range_test.losses],
        "restored": all(np.array_equal(a, b) for a, b in zip(before, after)),
        "rate_after": float(m.optimizer.learning_rate.numpy()),
    }


def scenario_bad_batch(s, work_dir):
    """A global batch that does not split over the workers' replicas."""
    x, y = data()
    answers = {}
    for name, n, size in (("odd", 64, 15), ("last_batch", 61, 24)):
        loader = keras_lr.data.GrowingBatchLoader(
            x[:n], y[:n], batch_size=size, seed=1
        )
        try:
            with s.scope():
                loader.as_dataset()
            answers[name] = None
        except ValueError as error:
            answers[name] = str(error)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=16, seed=1)
    with s.scope():
        loader.as_dataset()
    try:
        loader.request_batch_size(9)
        answers["request"] = None
    except ValueError as error:
        answers["request"] = str(error)
    return answers


def scenario_backup(s, work_dir):
    """Plateau cuts and batch growth with a backup at every step; killed
    with KERAS_LR_KILL_AT."""
    kill = os.environ.get("KERAS_LR_KILL_AT")
    kill_at = tuple(int(v) for v in kill.split(",")) if kill else None
    lag = float(os.environ.get("KERAS_LR_LAG_AT_END", "0"))
    x, y = data(96)
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=8, seed=1)
    backup_dir = os.path.join(work_dir, "backup")
    with s.scope():
        m = model(keras.optimizers.SGD(0.05, momentum=0.5))
        grow = keras_lr.callbacks.BatchSizeScheduler(
            loader, keras_lr.callbacks.grow_batch_at([2, 4], 2.0),
            max_batch_size=16,
        )
        plateau = keras_lr.callbacks.ReduceLROnPlateau(
            monitor="loss", factor=0.5, patience=2, min_delta=100.0
        )
        backup = keras_lr.callbacks.BackupAndRestore(backup_dir, save_freq=1)
        seen = []

        class Files(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 5:
                    time.sleep(lag)
                # Only the chief lists its folder: it removes the folder
                # when training ends, possibly before a lagging worker
                # reaches this line.
                if distribute.is_chief(s):
                    seen.append(sorted(os.listdir(backup_dir)))

        result = fit(
            m, loader, [grow, plateau, Files(), backup], epochs=6,
            kill_at=kill_at,
        )
        result["files"] = seen
        result["write_dir"] = os.path.relpath(backup._write_dir(), work_dir)
        return result


class RaiseAtEpochEnd(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError(f"stopped at the end of epoch {epoch}")


def scenario_raise_in_fit(s, work_dir):
    """A `fit` that raises at the end of epoch 0, while the pipeline has
    read ahead and waits for epoch 1 to open: the error reaches the
    caller, the waiting pipeline is released, and a second `fit` on the
    same loader trains its epochs at the loader's batch size."""
    loader, keep = fixed_loader()
    with s.scope():
        m = model(keras.optimizers.SGD(0.05))
        dataset = loader.as_dataset()
        error = None
        try:
            m.fit(
                dataset,
                steps_per_epoch=loader.steps_per_epoch,
                epochs=3,
                shuffle=False,
                verbose=0,
                callbacks=[keep, RaiseAtEpochEnd(0)],
            )
        except RuntimeError as caught:
            error = str(caught)
        del dataset
        gc.collect()
        result = fit(m, loader, [keep], epochs=2)
        result["raised"] = error
        return result


def scenario_loader_fit(s, work_dir):
    """`fit(loader)` (Keras' PyDataset path, which splits every global
    batch over the replicas): the batch grows 8 -> 16 at epoch 1; at
    epoch 2 the target 32 is past the cap of 16, so the rate halves."""
    loader, result = growth_run(s, epochs=3, itself=True)
    # The default cap, N / 10 = 9 samples: under 2 replicas, 8.
    loader.set_state({**loader.get_state(), "batch_size": 8, "epoch": 0})
    auto = keras_lr.callbacks.BatchSizeScheduler(
        loader, keras_lr.callbacks.grow_batch_at([1], 2.0)
    )
    with s.scope():
        m = model(keras.optimizers.SGD(0.05))
        m.fit(loader, epochs=1, shuffle=False, verbose=0, callbacks=[auto])
    result["auto_cap"] = auto.cap
    # A batch that does not split over the replicas, from the start.
    x, y = data(96)
    odd = keras_lr.data.GrowingBatchLoader(x, y, batch_size=15, seed=1)
    keep = keras_lr.callbacks.BatchSizeScheduler(odd, lambda e, size: size)
    try:
        with s.scope():
            m = model(keras.optimizers.SGD(0.05))
            m.fit(odd, epochs=1, shuffle=False, verbose=0, callbacks=[keep])
        result["odd"] = None
    except ValueError as error:
        result["odd"] = str(error)
    return result


SCENARIOS = {
    name.removeprefix("scenario_"): value
    for name, value in dict(globals()).items()
    if name.startswith("scenario_")
}


def main():
    names = sys.argv[1].split(",")
    work_dir = sys.argv[2] if len(sys.argv) > 2 else "."
    results = {"multi_worker": MULTI}
    harness.beat()
    try:
        s = strategy()
    except TimeoutError as error:
        results["startup_error"] = str(error)
        names = []
    if names:
        results["num_workers"] = distribute.num_workers(s)
        results["task_id"] = distribute.task_id(s)
        results["is_chief"] = distribute.is_chief(s)
    results["seconds"] = {"start": time.monotonic() - START}
    for name in names:
        harness.beat()
        begin = time.monotonic()
        try:
            results[name] = SCENARIOS[name](s, work_dir)
        except Exception:
            results[name] = {"error": traceback.format_exc()[-3000:]}
        results["seconds"][name] = time.monotonic() - begin
    with open(os.environ["KERAS_LR_RESULT"], "w") as file:
        json.dump(results, file)


if __name__ == "__main__":
    main()
