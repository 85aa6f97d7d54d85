"""Training on several machines with keras_lr: one script, run everywhere.

On a cluster, run this same script on every machine, each with its own
`TF_CONFIG` (the same cluster, its own `task.index`), and a `--backup`
folder that every machine can read (a shared file system):

    # machine 0                                  # machine 1
    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                "task": {"type": "worker", "index": 0}}' \\
        python examples/multi_worker.py --backup /shared/run1
                                                 # ... "index": 1 ...

Worker 0 is the chief: it writes the backup and prints. Kill any worker
and start them all again with the same command: training resumes from
the last backup with the same rates and batch sizes.

To try it on one machine, `--local 2` starts two workers on loopback
ports itself (CPU, one thread each). Runs in about 21 s on 2 CPU cores
(`time python examples/multi_worker.py --local 2`: real 0m20.634s).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def train(backup_dir: str, threads: int) -> None:
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    import numpy as np

    import keras_lr

    # Waits at most 120 s for every worker of TF_CONFIG, then names the
    # missing ones; its `reduce` is the one Keras 3's `fit` needs.
    strategy = keras_lr.distribute.MultiWorkerMirroredStrategy()
    chief = keras_lr.distribute.is_chief(strategy)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4096, 20)).astype("float32")
    y = (x @ rng.normal(size=(20, 1)) > 0).astype("float32")
    # Every worker holds the same loader; each serves its share of every
    # global batch (the batch sizes here are global).
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=64, seed=0)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((20,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(
            keras.optimizers.SGD(0.1, momentum=0.9),
            "binary_crossentropy",
            metrics=["accuracy"],
        )
        dataset = loader.as_dataset()  # inside the scope
    callbacks = [
        # Global batch 64 -> 128 -> 256 at epochs 3 and 6.
        keras_lr.callbacks.BatchSizeScheduler(
            loader, keras_lr.callbacks.grow_batch_at([3, 6], 2.0)
        ),
        keras_lr.callbacks.ReduceLROnPlateau(
            monitor="loss", factor=0.5, patience=2, backtrack=True,
            verbose=int(chief),
        ),
        keras_lr.callbacks.DivergenceGuard(verbose=int(chief)),
        keras_lr.callbacks.BackupAndRestore(backup_dir, save_freq=20),
    ]
    history = model.fit(
        dataset,
        steps_per_epoch=loader.steps_per_epoch,
        epochs=8,
        shuffle=False,
        verbose=2 if chief else 0,
        callbacks=callbacks,
    )
    if chief:
        print("final loss", history.history["loss"][-1])
        print("batch sizes", history.history["batch_size"])
        print("learning rates", history.history["learning_rate"])


def local_cluster(count: int, backup_dir: str) -> None:
    """Starts `count` workers of this script on loopback ports."""
    ports = []
    for _ in range(count):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    processes = []
    try:
        for index in range(count):
            task = {"type": "worker", "index": index}
            env = dict(
                os.environ,
                TF_CONFIG=json.dumps({"cluster": cluster, "task": task}),
            )
            command = [sys.executable, __file__, "--backup", backup_dir]
            processes.append(
                subprocess.Popen([*command, "--threads", "1"], env=env)
            )
        for process in processes:
            process.wait(timeout=600)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backup", default=None)
    parser.add_argument("--local", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    options = parser.parse_args()
    if options.local:
        with tempfile.TemporaryDirectory() as tmp:
            local_cluster(options.local, options.backup or tmp + "/backup")
    else:
        train(
            options.backup or os.path.join(tempfile.gettempdir(), "run"),
            options.threads,
        )
