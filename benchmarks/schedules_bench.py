"""Cost of each schedule per training step, relative to a constant rate.

One small model per configuration is compiled and traced; then their
train functions are called in turn, `--block` steps each, for `--blocks`
rounds in a shuffled order, and the process CPU time per step is taken
(CPU time counts the work done, whatever else runs on the machine). The
ratio printed is throughput against the constant-rate model:
`median CPU time per step (constant) / median CPU time per step (schedule)`.
TensorFlow runs on one thread so that the figures are the work of one
step. A Keras built-in schedule is included as a reference point.

Run: python benchmarks/schedules_bench.py [--blocks 30] [--block 200]
"""

import argparse
import os
import random
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

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
    "keras Cosine+warmup (ref.)": (
        lambda: keras.optimizers.schedules.CosineDecay(
            0.0, 1000, warmup_target=0.01, warmup_steps=100
        )
    ),
    "ScaledSchedule": lambda: schedules.ScaledSchedule(
        schedules.CosineDecay(0.01, 1000), 0.5
    ),
}


def build(learning_rate):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        keras.optimizers.SGD(learning_rate, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4096, 32)).astype("float32")
    y = rng.integers(0, 10, size=4096)
    makers = {"constant": lambda: 0.01, **SCHEDULES}
    functions = {}
    for name, make in makers.items():
        model = build(make())
        model.fit(x[:64], y[:64], batch_size=32, verbose=0)  # builds all
        data = tf.data.Dataset.from_tensor_slices((x, y))
        iterator = iter(data.batch(args.batch_size).repeat())
        function = model.make_train_function()
        for _ in range(50):  # warm up
            function(iterator)
        functions[name] = (function, iterator)

    per_step = {name: [] for name in functions}
    order = list(functions)
    for _ in range(args.blocks):
        random.shuffle(order)
        for name in order:
            function, iterator = functions[name]
            start = time.process_time()
            for _ in range(args.block):
                logs = function(iterator)
            float(logs["loss"])  # wait for the last step
            per_step[name].append((time.process_time() - start) / args.block)

    base = np.median(per_step["constant"])
    print(
        f"{args.blocks} alternating blocks of {args.block} steps; constant "
        f"rate: {base * 1e6:.1f} CPU us/step"
    )
    print(
        f"{'configuration':26s} {'us/step':>8s} {'ratio':>7s}  "
        "(throughput / constant rate)"
    )
    for name, times in per_step.items():
        median = np.median(times)
        print(f"{name:26s} {median * 1e6:8.1f} {base / median:7.3f}")


if __name__ == "__main__":
    main()
