"""GrowingBatchLoader vs a plain `tf.data` pipeline, side by side.

For each batch size, trains the same small MLP for one epoch at a time,
alternating between our loader and
`tf.data.Dataset.from_tensor_slices(...).shuffle().batch().prefetch()`,
and prints the median epoch time of each, their ratio (ours / tf.data; the
bar is <= 1.10) and samples per second. The first epoch of each `fit`
(tracing) is not timed.

    PYTHONPATH=. python benchmarks/batch_size_bench.py [--rounds 8]

Takes about 2 minutes on 2 busy CPU cores.
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_lr  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def make_model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def epoch_times(model, data, epochs):
    timer = EpochTimer()
    model.fit(data, epochs=epochs, shuffle=False, verbose=0, callbacks=[timer])
    return timer.times[1:]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[16, 80, 400]
    )
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.samples, 64)).astype("float32")
    y = rng.integers(0, 10, size=args.samples).astype("int32")
    print(
        f"python {platform.python_version()}, tensorflow {tf.__version__}, "
        f"keras {keras.__version__}, {os.cpu_count()} CPU cores, "
        f"{args.samples} samples, {args.rounds} rounds x "
        f"{args.epochs - 1} timed epochs"
    )
    print(
        f"{'batch':>6} {'ours s/epoch':>13} {'tf.data s/epoch':>16} "
        f"{'ratio':>6} {'ours samples/s':>15} {'tf.data samples/s':>18}"
    )
    for batch_size in args.batch_sizes:
        ours_model = make_model(0)
        plain_model = make_model(0)
        ours, plain = [], []
        for round_index in range(args.rounds):
            loader = keras_lr.data.GrowingBatchLoader(
                x, y, batch_size=batch_size, seed=round_index
            )
            dataset = (
                tf.data.Dataset.from_tensor_slices((x, y))
                .shuffle(args.samples, seed=round_index)
                .batch(batch_size)
                .prefetch(tf.data.AUTOTUNE)
            )
            # Alternate which goes first so drift hits both alike.
            pair = [(ours, ours_model, loader), (plain, plain_model, dataset)]
            if round_index % 2:
                pair.reverse()
            for times, model, data in pair:
                times.extend(epoch_times(model, data, args.epochs))
        ours_s = statistics.median(ours)
        plain_s = statistics.median(plain)
        print(
            f"{batch_size:>6} {ours_s:>13.4f} {plain_s:>16.4f} "
            f"{ours_s / plain_s:>6.3f} {args.samples / ours_s:>15.0f} "
            f"{args.samples / plain_s:>18.0f}"
        )


if __name__ == "__main__":
    main()
