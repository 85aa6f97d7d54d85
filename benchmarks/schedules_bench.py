"""Throughput of each schedule relative to a constant learning rate.

Trains one small model per configuration, then times them interleaved in
rounds (configuration order shuffled every round) so that machine noise
hits every configuration alike, and prints the median per-round ratio of
steps/s against the constant rate. For scale it also times a callback that
sets the rate from `on_train_batch_begin` (the Keras 2 way).

Run: python benchmarks/schedules_bench.py [--steps 200] [--rounds 7]
"""

import argparse
import os
import random
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_lr import schedules  # noqa: E402

SCHEDULES = {
    "ExponentialDecay": lambda: schedules.ExponentialDecay(0.01, 100, 0.9),
    "InverseTimeDecay": lambda: schedules.InverseTimeDecay(0.01, 100, 0.5),
    "PiecewiseConstantDecay": lambda: schedules.PiecewiseConstantDecay(
        [400, 700], [0.01, 0.001, 0.0001]
    ),
    "PolynomialDecay": lambda: schedules.PolynomialDecay(0.01, 1000),
    "CosineDecay+warmup": lambda: schedules.CosineDecay(
        0.0, 1000, warmup_target=0.01, warmup_steps=100
    ),
    "CosineDecayRestarts": lambda: schedules.CosineDecayRestarts(0.01, 100),
    "GaussianDecay": lambda: schedules.GaussianDecay(0.01, 500),
    "CyclicalLearningRate": lambda: schedules.CyclicalLearningRate(
        0.001, 0.01, 50, mode="exp_range", gamma=0.999
    ),
    "OneCycle": lambda: schedules.OneCycle(0.01, 10_000),
    "LinearWarmup": lambda: schedules.LinearWarmup(
        schedules.CosineDecay(0.01, 1000), 100
    ),
    "JoinedSchedule": lambda: schedules.JoinedSchedule(
        [
            schedules.PolynomialDecay(0.0, 100, 0.01),
            schedules.CosineDecay(0.01, 900),
            0.0001,
        ],
        [100, 1000],
    ),
    "keras CosineDecay (ref.)": lambda: keras.optimizers.schedules.CosineDecay(
        0.01, 1000
    ),
    "ScaledSchedule": lambda: schedules.ScaledSchedule(
        schedules.CosineDecay(0.01, 1000), 0.5
    ),
}


class PerBatchSetter(keras.callbacks.Callback):
    """The Keras 2 way: set the rate from a batch hook (host sync)."""

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = 0.01 * 0.999**batch


def build(learning_rate, x, y, batch_size):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        keras.optimizers.SGD(learning_rate, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)  # trace
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n = args.steps * args.batch_size
    x = rng.normal(size=(n, 32)).astype("float32")
    y = rng.integers(0, 10, size=n)
    configs = {"constant": (build(0.01, x, y, args.batch_size), [])}
    for name, make in SCHEDULES.items():
        configs[name] = (build(make(), x, y, args.batch_size), [])
    configs["per-batch callback"] = (
        build(0.01, x, y, args.batch_size),
        [PerBatchSetter()],
    )

    def timed_fit(name):
        model, callbacks = configs[name]
        start = time.perf_counter()
        model.fit(
            x,
            y,
            batch_size=args.batch_size,
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=callbacks,
        )
        return args.steps / (time.perf_counter() - start)

    # Each configuration is timed right next to a constant-LR fit, in
    # alternating order, and the ratio of that pair is kept: noise from
    # other processes then hits both sides of a ratio alike.
    ratios = {name: [] for name in configs if name != "constant"}
    base_rates = []
    for round_index in range(args.rounds):
        order = list(ratios)
        random.shuffle(order)
        for name in order:
            if round_index % 2:
                other, base = timed_fit(name), timed_fit("constant")
            else:
                base, other = timed_fit("constant"), timed_fit(name)
            ratios[name].append(other / base)
            base_rates.append(base)

    print(
        f"steps per fit: {args.steps}, rounds: {args.rounds}, "
        f"constant-LR median: {np.median(base_rates):.0f} steps/s"
    )
    print(
        f"{'configuration':26s} {'ratio':>7s} {'min':>7s} {'max':>7s}"
        "  (throughput / constant LR, median of adjacent pairs)"
    )
    for name, values in ratios.items():
        values = np.array(values)
        print(
            f"{name:26s} {np.median(values):7.3f} {values.min():7.3f} "
            f"{values.max():7.3f}"
        )


if __name__ == "__main__":
    main()
