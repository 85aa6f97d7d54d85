"""Cost of the LR callbacks (all on the rate controller) against `fit` at a
constant rate and against the equivalent in-graph schedule.

Every configuration has its own model (a small MLP, one TensorFlow
thread) traced once before timing; then, round after round in a shuffled
order, each configuration runs the same `fit` call (1 epoch, then 10
epochs), so drift of the machine hits all alike. A `fit` after the first
traces nothing new (the callbacks only assign the controller's
variables), so the timed calls are steady state. The figures are medians
over rounds of the per-round ratio of process CPU time (the work done,
whatever else the machine runs) and of wall time.

A second, finer table times the steps alone: the traced train function
of every configuration (its callbacks started as in `fit`) is called in
turn, `--block` steps each, in shuffled order, `--blocks` times; the
figure is the median CPU time per step and its ratio to the reference.

Columns: `/const`, ratio to `fit` at a constant rate (plain SGD, no
callback); `/ref`, ratio to the callback's reference: the equivalent
in-graph schedule for `CyclicLR` and `OneCycleLR`, the same
`ScheduleFreeAdamW` with no callback for `SwapScheduleFreeWeights`.

Usage (2-core CPU box, about 5 minutes):

    PYTHONPATH=$PWD python benchmarks/rate_controller_bench.py
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_lr  # noqa: E402


class Plateau(keras.callbacks.Callback):
    """A `val_loss` that never improves: ReduceLROnPlateau cuts often."""

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = 1.0


def configurations(steps, epochs):
    """name -> (rate or optimizer factory, callbacks, reference name)."""
    total = steps * epochs
    cyclic = dict(
        initial_learning_rate=1e-3,
        maximal_learning_rate=1e-2,
        step_size=2 * steps,
    )
    schedules = keras_lr.schedules
    return {
        "constant": (1e-2, lambda: [], None),
        # The same configuration again: how far two identical ones read
        # apart on this machine (the noise floor of every ratio below).
        "constant (second copy)": (1e-2, lambda: [], None),
        "CyclicalLearningRate schedule": (
            lambda: schedules.CyclicalLearningRate(**cyclic),
            lambda: [],
            None,
        ),
        "OneCycle schedule": (
            lambda: schedules.OneCycle(1e-2, total),
            lambda: [],
            None,
        ),
        "CyclicLR": (
            1e-2,
            lambda: [
                keras_lr.callbacks.CyclicLR(**cyclic, cycle_momentum=False)
            ],
            "CyclicalLearningRate schedule",
        ),
        "OneCycleLR": (
            1e-2,
            lambda: [
                keras_lr.callbacks.OneCycleLR(
                    1e-2, total_steps=total, cycle_momentum=False
                )
            ],
            "OneCycle schedule",
        ),
        "ReduceLROnPlateau": (
            1e-2,
            lambda: [
                Plateau(),
                keras_lr.callbacks.ReduceLROnPlateau(patience=1, factor=0.99),
            ],
            "constant",
        ),
        "DivergenceGuard": (
            1e-2,
            lambda: [keras_lr.callbacks.DivergenceGuard()],
            "constant",
        ),
        "LearningRateLogger": (
            1e-2,
            lambda: [keras_lr.callbacks.LearningRateLogger()],
            "constant",
        ),
        "OneCycleLR+Logger": (
            1e-2,
            lambda: [
                keras_lr.callbacks.OneCycleLR(
                    1e-2, total_steps=total, cycle_momentum=False
                ),
                keras_lr.callbacks.LearningRateLogger(),
            ],
            "OneCycle schedule",
        ),
        "AnytimeCooldown": (
            1e-2,
            lambda: [
                keras_lr.callbacks.AnytimeCooldown(
                    decay_steps=total, start_epoch=0, stop_when_done=False
                )
            ],
            "constant",
        ),
        "LogRateInBatchLogs": (
            1e-2,
            lambda: [keras_lr.callbacks.LogRateInBatchLogs()],
            "constant",
        ),
        "ScheduleFreeAdamW": (
            lambda: keras.optimizers.ScheduleFreeAdamW(1e-3),
            lambda: [],
            None,
        ),
        "SwapScheduleFreeWeights": (
            lambda: keras.optimizers.ScheduleFreeAdamW(1e-3),
            lambda: [keras_lr.callbacks.SwapScheduleFreeWeights()],
            "ScheduleFreeAdamW",
        ),
    }


def build(rate, width):
    """`rate`: a float, or a factory of a schedule or of an optimizer."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    made = rate() if callable(rate) else rate
    if isinstance(made, keras.optimizers.Optimizer):
        optimizer = made
    else:
        optimizer = keras.optimizers.SGD(made)
    model.compile(
        optimizer,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def step_level(args, configs, models, x, y) -> None:
    functions = {}
    for name, (model, callbacks) in models.items():
        for callback in callbacks:
            callback.set_params(
                {"epochs": args.long, "steps": args.steps, "verbose": 0}
            )
            callback.on_train_begin()
            callback.on_epoch_begin(0)
        data = tf.data.Dataset.from_tensor_slices((x, y))
        iterator = iter(data.batch(args.batch_size).repeat())
        # The function `fit` traced; calling it traces nothing new.
        function = model.train_function
        for _ in range(20):
            function(iterator)
        functions[name] = (function, iterator)
    per_step = {name: [] for name in configs}
    order = list(configs)
    shuffler = np.random.default_rng(2)
    for _ in range(args.blocks):
        shuffler.shuffle(order)
        for name in order:
            function, iterator = functions[name]
            start = time.process_time()
            for _ in range(args.block):
                logs = function(iterator)
            float(logs["loss"])
            per_step[name].append((time.process_time() - start) / args.block)
    print(f"\nstep level: {args.blocks} shuffled blocks of {args.block} steps")
    print(f"{'configuration':<30}{'CPU us/step':>12}{'/const':>9}{'/ref':>9}")
    base = statistics.median(per_step["constant"])
    for name, (_, _, reference) in configs.items():
        median = statistics.median(per_step[name])
        row = f"{name:<30}{median * 1e6:>12.1f}{median / base:>9.3f}"
        if reference is not None and reference != "constant":
            reference_median = statistics.median(per_step[reference])
            row += f"{median / reference_median:>9.3f}"
        print(row)
    for _, callbacks in models.values():
        for callback in callbacks:
            callback.on_train_end()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--long", type=int, default=10, help="epochs")
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--block", type=int, default=50)
    args = parser.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rng = np.random.default_rng(0)
    n = args.steps * args.batch_size
    x = rng.normal(size=(n, 64)).astype("float32")
    y = rng.integers(0, 10, size=n)
    lengths = (1, args.long)
    configs = configurations(args.steps, args.long)
    models = {}
    for name, (rate, make, _) in configs.items():
        model = build(rate, args.width)
        callbacks = make()
        # Traces (and installs the controller) once.
        model.fit(
            x,
            y,
            batch_size=args.batch_size,
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=callbacks,
        )
        models[name] = (model, callbacks)
    cpu = {(name, e): [] for name in configs for e in lengths}
    wall = {(name, e): [] for name in configs for e in lengths}
    order = list(configs)
    shuffler = np.random.default_rng(1)
    for _ in range(args.rounds):
        for epochs in lengths:
            shuffler.shuffle(order)
            for name in order:
                model, callbacks = models[name]
                start, start_cpu = time.perf_counter(), time.process_time()
                model.fit(
                    x,
                    y,
                    batch_size=args.batch_size,
                    epochs=epochs,
                    verbose=0,
                    shuffle=False,
                    callbacks=callbacks,
                )
                cpu[name, epochs].append(time.process_time() - start_cpu)
                wall[name, epochs].append(time.perf_counter() - start)

    def ratio(table, name, reference, epochs):
        return statistics.median(
            a / b for a, b in zip(table[name, epochs], table[reference, epochs])
        )

    print(
        f"keras {keras.__version__}, tensorflow {tf.__version__}, 1 thread; "
        f"MLP 64-{args.width}-{args.width}-10, batch {args.batch_size}, "
        f"{args.steps} steps/epoch, {args.rounds} rounds; medians of "
        "per-round ratios"
    )
    header = (
        f"{'configuration':<30}{'epochs':>7}{'CPU ms':>9}"
        f"{'/const CPU':>11}{'/const wall':>12}"
        f"{'/ref CPU':>11}{'/ref wall':>12}"
    )
    print(header)
    for name, (_, _, reference) in configs.items():
        for epochs in lengths:
            row = (
                f"{name:<30}{epochs:>7}"
                f"{statistics.median(cpu[name, epochs]) * 1e3:>9.1f}"
                f"{ratio(cpu, name, 'constant', epochs):>11.3f}"
                f"{ratio(wall, name, 'constant', epochs):>12.3f}"
            )
            if reference is not None and reference != "constant":
                row += (
                    f"{ratio(cpu, name, reference, epochs):>11.3f}"
                    f"{ratio(wall, name, reference, epochs):>12.3f}"
                )
            print(row)
    step_level(args, configs, models, x, y)


if __name__ == "__main__":
    main()
