"""The race's overhead beyond the training it does.

Side by side in one process, interleaved rounds, TensorFlow on 1 thread:
the wall time of the race (stage 2 of `choose_learning_rate`, as its
`cost["race_seconds"]` reports: scoring the start, every candidate's
training, the restores between candidates, the held-out scoring after
each share, the ranking) against one plain `fit` of the same number of
steps on the same batches at a constant rate, from a freshly compiled
model (both trace the train function once). Overhead =
1 - plain / race, the fraction of the race's time not spent training;
the bar is 5%.

    PYTHONPATH=$PWD python benchmarks/race_bench.py [--rounds 5]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import range_test_quality as quality  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_lr.range_test.race import choose_learning_rate  # noqa: E402

# name: (hidden widths, budget in epochs of the race's training part; the
# default is 20). The race's costs beyond training come per candidate
# share (23 of them with 12 candidates), so they weigh less as the budget
# grows.
ROWS = {
    "MLP 64-64-10": ([64], 20),
    "MLP 64-512-512-10": ([512, 512], 20),
    "MLP 64-64-10, budget 4x": ([64], 80),
}


def race_once(widths, x, y, batch_size, budget):
    model = quality.make_model(
        keras.optimizers.SGD(0.01), 0, quality.mlp(widths)
    )
    result = choose_learning_rate(
        model, x, y, batch_size=batch_size, budget=budget, seed=0
    )
    return result.cost["race_seconds"], result.cost["race_steps"]


def plain_once(widths, x, y, batch_size, steps):
    model = quality.make_model(
        keras.optimizers.SGD(0.01), 0, quality.mlp(widths)
    )
    rng = np.random.default_rng(0)
    indices = np.concatenate(
        [
            rng.permutation(len(x))
            for _ in range(steps * batch_size // len(x) + 1)
        ]
    )[: steps * batch_size]
    # Cold, like the race: its first `fit` traces the model's train
    # function too (the range test before it ran its own).
    started = time.perf_counter()
    model.fit(
        x[indices], y[indices], batch_size=batch_size, shuffle=False, verbose=0
    )
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    x_train, _, y_train, _ = quality.data()
    batch_size = 32
    print(
        f"keras {keras.__version__}, tensorflow {tf.__version__}, 1 thread; "
        f"digits ({len(x_train)} training samples, a fifth held out by the "
        f"race), batch {batch_size}, SGD, 12 candidates; "
        f"{args.rounds} rounds, median of per-round ratios"
    )
    print(
        f"{'model':20s} {'race s':>8s} {'plain s':>8s} {'steps':>6s} "
        f"{'overhead':>9s} {'min':>7s} {'max':>7s}"
    )
    train_part = len(x_train) - round(0.2 * len(x_train))
    for name, (widths, epochs) in ROWS.items():
        budget = epochs * (train_part // batch_size)
        rows = []
        for _ in range(args.rounds):
            race_s, steps = race_once(
                widths, x_train, y_train, batch_size, budget
            )
            plain_s = plain_once(widths, x_train, y_train, batch_size, steps)
            rows.append((race_s, plain_s, steps))
        overheads = [1 - plain / race for race, plain, _ in rows]
        print(
            f"{name:20s} {np.median([r[0] for r in rows]):8.3f} "
            f"{np.median([r[1] for r in rows]):8.3f} {rows[0][2]:6d} "
            f"{np.median(overheads):9.3f} {min(overheads):7.3f} "
            f"{max(overheads):7.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
