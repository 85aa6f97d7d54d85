"""Two workers against one process, on the same global batch.

python benchmarks/multi_worker_bench.py [--epochs 4] [--batch 64]

Starts 2 worker processes on this machine (`TF_CONFIG` with loopback
ports, CPU, gRPC collectives, 1 intra- and 1 inter-op thread each) under
`keras_lr.distribute.MultiWorkerMirroredStrategy`, then 1 process with 1
thread, each training the same seeded MLP with `OneCycleLR` (rate and
momentum cycled) and `ReduceLROnPlateau` on a `GrowingBatchLoader`'s
`as_dataset()`. Prints whether the per-step rate and momentum and the
per-epoch loss agree (to float tolerance) and the throughput of each, side
by side. The first epoch (tracing, start-up) is left out of the timing.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = 8192


def train(epochs: int, batch: int) -> dict:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import numpy as np

    import keras_lr

    multi = "TF_CONFIG" in os.environ
    strategy = (
        keras_lr.distribute.MultiWorkerMirroredStrategy()
        if multi
        else tf.distribute.get_strategy()
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, 32)).astype("float32")
    y = np.tanh(x @ rng.normal(size=(32, 1))).astype("float32")
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=batch, seed=0)
    keep = keras_lr.callbacks.BatchSizeScheduler(loader, lambda e, size: size)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((32,)),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(1),
            ]
        )
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "mse")
        dataset = loader.as_dataset()
    steps = SAMPLES // batch
    rows, ends = {}, []

    class Log(keras.callbacks.Callback):
        def on_train_batch_begin(self, b, logs=None):
            optimizer = self.model.optimizer
            rows[int(optimizer.iterations.numpy())] = [
                float(optimizer.learning_rate.numpy()),
                float(keras.ops.convert_to_tensor(optimizer.momentum)),
            ]

        def on_epoch_end(self, epoch, logs=None):
            ends.append((time.perf_counter(), float(logs["loss"])))

    callbacks = [
        keep,
        keras_lr.callbacks.OneCycleLR(0.05, total_steps=epochs * steps),
        keras_lr.callbacks.ReduceLROnPlateau(monitor="loss", patience=1),
        Log(),
    ]
    model.fit(
        dataset,
        steps_per_epoch=loader.steps_per_epoch,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )
    timed = ends[-1][0] - ends[0][0]
    return {
        "steps": rows,
        "losses": [loss for _, loss in ends],
        "samples_per_second": (epochs - 1) * SAMPLES / timed,
        "steps_per_second": (epochs - 1) * steps / timed,
    }


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def launch(args, tf_configs, out: str) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    processes = []
    try:
        for index, config in enumerate(tf_configs):
            worker_env = dict(env, BENCH_OUT=f"{out}-{index}.json")
            if config is not None:
                worker_env["TF_CONFIG"] = json.dumps(config)
            processes.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--worker", *args],
                    env=worker_env,
                )
            )
        for process in processes:
            if process.wait(timeout=600) != 0:
                raise SystemExit(f"a worker failed ({process.returncode})")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    results = []
    for index in range(len(tf_configs)):
        with open(f"{out}-{index}.json") as file:
            results.append(json.load(file))
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--worker", action="store_true")
    options = parser.parse_args()
    if options.worker:
        result = train(options.epochs, options.batch)
        with open(os.environ["BENCH_OUT"], "w") as file:
            json.dump(result, file)
        return
    args = ["--epochs", str(options.epochs), "--batch", str(options.batch)]
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    with tempfile.TemporaryDirectory() as tmp:
        w0, w1 = launch(
            args,
            [
                {"cluster": cluster, "task": {"type": "worker", "index": i}}
                for i in range(2)
            ],
            os.path.join(tmp, "multi"),
        )
        (one,) = launch(args, [None], os.path.join(tmp, "single"))
    import numpy as np

    same_workers = w0["steps"] == w1["steps"] and w0["losses"] == w1["losses"]
    keys = sorted(one["steps"], key=int)
    rate = np.array([one["steps"][k] for k in keys])
    multi_rate = np.array([w0["steps"][k] for k in keys])
    print(
        f"global batch {options.batch}, {SAMPLES} samples, "
        f"{options.epochs} epochs ({len(keys)} steps), "
        "OneCycleLR + ReduceLROnPlateau, SGD(momentum=0.9)"
    )
    print(f"steps logged, 2 workers / 1 process: {len(w0['steps'])} / "
          f"{len(keys)}")
    print(f"2 workers identical to each other: {same_workers}")
    print(
        "max relative difference, per-step rate and momentum: "
        f"{np.max(np.abs(multi_rate - rate) / np.abs(rate).clip(1e-30)):.3g}"
    )
    losses = np.array(one["losses"])
    multi_losses = np.array(w0["losses"])
    print(
        "max relative difference, per-epoch loss: "
        f"{np.max(np.abs(multi_losses - losses) / losses):.3g}"
    )
    print(f"epoch losses, 1 process: {[f'{v:.6g}' for v in losses]}")
    print(f"epoch losses, 2 workers: {[f'{v:.6g}' for v in multi_losses]}")
    print()
    print(f"{'':28}{'samples/s':>12}{'steps/s':>10}")
    runs = (("1 process x 1 thread", one), ("2 workers x 1 thread", w0))
    for name, r in runs:
        print(
            f"{name:28}{r['samples_per_second']:12.0f}"
            f"{r['steps_per_second']:10.1f}"
        )


if __name__ == "__main__":
    main()
