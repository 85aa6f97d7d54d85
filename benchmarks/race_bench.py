"""The race's overhead beyond the training it does.

Side by side in one process, interleaved rounds, TensorFlow on 1 thread:
the wall time of the race (stage 2 of `choose_learning_rate`, as its
`cost["race_seconds"]` reports: scoring the start, every candidate's
training, the restores between candidates, the held-out scoring after
each share, the ranking) against one plain `fit` of the same number of
steps on the same batches at a constant rate, from a freshly compiled
model (both trace the train function once). Two readings, medians of
per-round ratios: A/B = 1 - plain / race, the fraction of the race's time
not spent training (noisy: two separate runs); direct = the seconds spent
in the race's own hooks (`TIMED`: first score with the trace of Keras'
test function, share ends, loads, data set-up) over the race's time. The
last column is the first score's seconds (mostly that trace). The bar is
5%.

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
from keras_lr.range_test.race_runner import RaceRunner  # noqa: E402

# The race's own work, timed where it happens: the first score (which
# traces Keras' test function), the hooks that end a share (held-out
# score, state copy) and load the next candidate (state copy, rate), and
# the set-up of each fit's data. Everything else in the race's time is
# the `fit` that trains.
TIMED = (
    "score_start",
    "reference_rates",
    "_segment_data",
    "on_train_begin",
    "on_train_batch_begin",
    "on_epoch_end",
)


class RaceClock:
    """Sums the seconds spent in the race's own hooks (`TIMED`)."""

    def __init__(self):
        self.seconds = {name: 0.0 for name in TIMED}
        self._saved = {}

    def __enter__(self):
        for name in TIMED:
            original = getattr(RaceRunner, name)
            self._saved[name] = original
            setattr(RaceRunner, name, self._timed(name, original))
        return self

    def _timed(self, name, original):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed

    def __exit__(self, *exc_info):
        for name, original in self._saved.items():
            setattr(RaceRunner, name, original)
        return False

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
    with RaceClock() as clock:
        result = choose_learning_rate(
            model, x, y, batch_size=batch_size, budget=budget, seed=0
        )
    return (
        result.cost["race_seconds"],
        result.cost["race_steps"],
        sum(clock.seconds.values()),
        clock.seconds["score_start"],
    )


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
        f"{'model':24s} {'race s':>7s} {'plain s':>7s} {'steps':>6s} "
        f"{'A/B':>7s} {'min':>7s} {'max':>7s} {'direct':>7s} {'min':>7s} "
        f"{'max':>7s} {'1st score':>9s}"
    )
    train_part = len(x_train) - round(0.2 * len(x_train))
    for name, (widths, epochs) in ROWS.items():
        budget = epochs * (train_part // batch_size)
        rows = []
        for _ in range(args.rounds):
            race_s, steps, own_s, first_s = race_once(
                widths, x_train, y_train, batch_size, budget
            )
            plain_s = plain_once(widths, x_train, y_train, batch_size, steps)
            rows.append((race_s, plain_s, steps, own_s, first_s))
        overheads = [1 - r[1] / r[0] for r in rows]
        direct = [r[3] / r[0] for r in rows]
        print(
            f"{name:24s} {np.median([r[0] for r in rows]):7.3f} "
            f"{np.median([r[1] for r in rows]):7.3f} {rows[0][2]:6d} "
            f"{np.median(overheads):7.3f} {min(overheads):7.3f} "
            f"{max(overheads):7.3f} {np.median(direct):7.3f} "
            f"{min(direct):7.3f} {max(direct):7.3f} "
            f"{np.median([r[4] for r in rows]):9.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
