"""GrowingBatchLoader vs a plain `tf.data` pipeline, side by side.

For each batch size, trains the same small MLP a few epochs per `fit`,
rotating between three inputs in one process:

- `loader`: the loader itself (Keras' `PyDataset` path),
- `as_dataset`: `loader.as_dataset()` with `steps_per_epoch=
  loader.steps_per_epoch`,
- `tf.data`: `Dataset.from_tensor_slices(...).shuffle().batch().prefetch()`.

The two loader inputs run as users run them, with a `BatchSizeScheduler`
(here one that keeps the batch size) driving the loader. An epoch's time
runs from one `on_epoch_begin` to the next (to `on_train_end` for the
last), with the timer first in the callback list, so the batch-size
callback's own work at epoch edges is counted. The first epoch of each
`fit` (tracing) is not timed.

Printed per batch size, for wall-clock time and for the CPU time of the
process (all threads; less disturbed by other jobs on a shared machine):
the median over rounds of each input's epoch time (each round's value is
the median of its timed epochs), the ratio of each loader input to
`tf.data` (the bar is <= 1.10) as the median of the per-round ratios with
their range over rounds, and samples per (CPU) second from the medians.
Then, without a model, the time to read one epoch of each input through
a new iterator (the first batch, which includes making the iterator, and
each later batch), and of Keras' `PyDataset` path rebuilt from public
parts, to show where that path's time goes.

    PYTHONPATH=. python benchmarks/batch_size_bench.py [--rounds 8]

A run took about a minute on 2 busy CPU cores.
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
    """Times from one epoch's start to the next (first in the list).

    Wall-clock time, and the CPU time of the whole process (all threads),
    which other jobs on the machine disturb less.
    """

    def on_train_begin(self, logs=None):
        self.stamps = []

    def on_epoch_begin(self, epoch, logs=None):
        self.stamps.append((time.perf_counter(), time.process_time()))

    def on_train_end(self, logs=None):
        self.stamps.append((time.perf_counter(), time.process_time()))

    def times(self, clock):
        return [
            b[clock] - a[clock] for a, b in zip(self.stamps, self.stamps[1:])
        ]


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


def epoch_times(model, data, epochs, callbacks, **kw):
    """Median wall and CPU seconds of the epochs after the first."""
    timer = EpochTimer()
    model.fit(
        data,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[timer] + callbacks,
        **kw,
    )
    return tuple(statistics.median(timer.times(c)[1:]) for c in (0, 1))


def spread(ratios):
    return (
        f"{statistics.median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}]"
    )


def keep_size(loader):
    return keras_lr.callbacks.BatchSizeScheduler(
        loader, lambda epoch, size: size, max_batch_size=None
    )


def measure(x, y, batch_size, args):
    """Per input, per round: (median wall s, median CPU s) of an epoch."""
    names = ("loader", "as_ds", "tf")
    models = {name: make_model(0) for name in names}
    rounds = {name: [] for name in names}
    for round_index in range(args.rounds):
        loader = keras_lr.data.GrowingBatchLoader(
            x, y, batch_size=batch_size, seed=round_index
        )
        fast = keras_lr.data.GrowingBatchLoader(
            x, y, batch_size=batch_size, seed=round_index
        )
        dataset = (
            tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=round_index)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
        inputs = {
            "loader": (loader, [keep_size(loader)], {}),
            "as_ds": (
                fast.as_dataset(),
                [keep_size(fast)],
                {"steps_per_epoch": fast.steps_per_epoch},
            ),
            "tf": (dataset, [], {}),
        }
        # Rotate the order so that load drift hits all three alike.
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            data, callbacks, kw = inputs[name]
            rounds[name].append(
                epoch_times(models[name], data, args.epochs, callbacks, **kw)
            )
    return rounds


def input_only(x, y, batch_size, passes):
    """Reading one epoch of each input through a new iterator, no model.

    Returns per input the first batch's latency (ms; it includes making
    the iterator, which Keras does every epoch for `fit(loader)` and once
    per `fit` for `as_dataset()`) and the time per later batch (us).

    `from_generator(loader[i])` is what Keras' `PyDataset` path runs (a
    generator over `loader[i]`, prefetched); the same over batches stored
    in advance isolates the generator round trip from the loader's work.
    """
    loader = keras_lr.data.GrowingBatchLoader(
        x, y, batch_size=batch_size, seed=0
    )
    count = len(loader)
    stored = [loader[i] for i in range(count)]
    signature = (
        tf.TensorSpec((None,) + x.shape[1:], tf.as_dtype(x.dtype)),
        tf.TensorSpec((None,), tf.as_dtype(y.dtype)),
    )

    def generated(batches):
        return tf.data.Dataset.from_generator(
            batches, output_signature=signature
        ).prefetch(tf.data.AUTOTUNE)

    # Built once; each pass times a fresh iterator over one epoch.
    inputs = {
        "loader[i]": None,
        "from_generator(loader[i])": generated(
            lambda: (loader[i] for i in range(count))
        ),
        "from_generator(stored)": generated(lambda: iter(stored)),
        "as_dataset": loader.as_dataset().take(count),
        "tf.data": (
            tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=0)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        ),
    }
    first = {name: [] for name in inputs}
    later = {name: [] for name in inputs}
    for _ in range(passes):
        for name, dataset in inputs.items():
            start = time.perf_counter()
            if dataset is None:
                loader[0]
                mid = time.perf_counter()
                for i in range(1, count):
                    loader[i]
            else:
                iterator = iter(dataset)
                next(iterator)
                mid = time.perf_counter()
                for _ in iterator:
                    pass
            end = time.perf_counter()
            first[name].append(mid - start)
            later[name].append((end - mid) / (count - 1))
    return {
        name: (
            statistics.median(first[name][1:]) * 1e3,
            statistics.median(later[name][1:]) * 1e6,
        )
        for name in inputs
    }


def table(results, clock, samples):
    label = ("wall-clock", "CPU (process)")[clock]
    per = ("samples/s", "samples/CPU-s")[clock]
    print(
        f"\n{label} time per epoch: median over rounds; ratio to tf.data: "
        "median of the per-round ratios [min-max over rounds]"
    )
    print(
        f"{'batch':>5} {'loader s':>8} {'as_ds s':>8} {'tf.data s':>9} "
        f"{'loader/tf [range]':>22} {'as_ds/tf [range]':>22} "
        f"{per + ': loader':>17} {'as_ds':>7} {'tf.data':>7}"
    )
    for batch_size, rounds in results.items():
        seconds = {
            name: [r[clock] for r in values] for name, values in rounds.items()
        }
        med = {name: statistics.median(v) for name, v in seconds.items()}
        ratios = {
            name: [a / b for a, b in zip(seconds[name], seconds["tf"])]
            for name in ("loader", "as_ds")
        }
        print(
            f"{batch_size:>5} {med['loader']:>8.4f} {med['as_ds']:>8.4f} "
            f"{med['tf']:>9.4f} {spread(ratios['loader']):>22} "
            f"{spread(ratios['as_ds']):>22} "
            f"{samples / med['loader']:>17.0f} "
            f"{samples / med['as_ds']:>7.0f} "
            f"{samples / med['tf']:>7.0f}"
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--input-passes", type=int, default=6)
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
    results = {b: measure(x, y, b, args) for b in args.batch_sizes}
    for clock in (0, 1):
        table(results, clock, args.samples)
    reads = {
        b: input_only(x, y, b, args.input_passes) for b in args.batch_sizes
    }
    names = list(next(iter(reads.values())))
    for column, what in enumerate(
        ("first batch of a new iterator, ms", "each later batch, us")
    ):
        print(
            f"\ninput only, no training, one epoch read in an eager loop "
            f"(median of passes 2-{args.input_passes}): {what}"
        )
        print(f"{'batch':>5} " + " ".join(f"{n:>26}" for n in names))
        for batch_size, row in reads.items():
            print(
                f"{batch_size:>5} "
                + " ".join(f"{row[n][column]:>26.2f}" for n in names)
            )
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"(load average at the end: {load})")


if __name__ == "__main__":
    main()
