"""GrowingBatchLoader vs a plain `tf.data` pipeline, side by side.

For each batch size, trains the same small MLP a few epochs per `fit`,
rotating between three inputs: the loader itself (Keras' `PyDataset`
path), `loader.as_dataset()` (native `tf.data`, live `steps_per_epoch`),
and a plain `tf.data.Dataset.from_tensor_slices(...).shuffle().batch()
.prefetch()`. Prints the median epoch time of each, the ratios to plain
`tf.data` (the bar is <= 1.10) and samples per second. The first epoch of
each `fit` (tracing) is not timed.

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


def epoch_times(model, data, epochs, **kw):
    timer = EpochTimer()
    model.fit(
        data, epochs=epochs, shuffle=False, verbose=0, callbacks=[timer], **kw
    )
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
        f"{'batch':>6} {'loader s':>9} {'as_dataset s':>13} "
        f"{'tf.data s':>10} {'loader/tf':>10} {'as_ds/tf':>9} "
        f"{'samples/s: loader':>18} {'as_dataset':>11} {'tf.data':>9}"
    )
    for batch_size in args.batch_sizes:
        models = {name: make_model(0) for name in ("loader", "as_ds", "tf")}
        times = {name: [] for name in models}
        for round_index in range(args.rounds):
            loader = keras_lr.data.GrowingBatchLoader(
                x, y, batch_size=batch_size, seed=round_index
            )
            fast = keras_lr.data.GrowingBatchLoader(
                x, y, batch_size=batch_size, seed=round_index
            )
            dataset = (
                tf.data.Dataset.from_tensor_slices((x, y))
                .shuffle(args.samples, seed=round_index)
                .batch(batch_size)
                .prefetch(tf.data.AUTOTUNE)
            )
            inputs = {
                "loader": (loader, {}),
                "as_ds": (
                    fast.as_dataset(),
                    {"steps_per_epoch": fast.steps_per_epoch},
                ),
                "tf": (dataset, {}),
            }
            # Rotate the order so that load drift hits all three alike.
            order = list(inputs)
            shift = round_index % len(order)
            for name in order[shift:] + order[:shift]:
                data, kw = inputs[name]
                times[name].extend(
                    epoch_times(models[name], data, args.epochs, **kw)
                )
        med = {name: statistics.median(t) for name, t in times.items()}
        print(
            f"{batch_size:>6} {med['loader']:>9.4f} {med['as_ds']:>13.4f} "
            f"{med['tf']:>10.4f} {med['loader'] / med['tf']:>10.3f} "
            f"{med['as_ds'] / med['tf']:>9.3f} "
            f"{args.samples / med['loader']:>18.0f} "
            f"{args.samples / med['as_ds']:>11.0f} "
            f"{args.samples / med['tf']:>9.0f}"
        )


if __name__ == "__main__":
    main()
