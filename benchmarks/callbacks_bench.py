"""Cost of keras_lr's LR callbacks against the same `fit` with none.

Every configuration trains the same small MLP; configurations run
interleaved (round robin) in one process, so drift of the machine hits
all of them alike. The figure is the median steady-state epoch time
(the first epoch of every `fit`, which traces the train function, is
left out), divided by that of `fit` with no callback.

Usage (2-core CPU box, about 4 minutes):

    PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=3 python benchmarks/callbacks_bench.py

Any Keras backend: set KERAS_BACKEND (tensorflow, jax, torch) before the
command. On TensorFlow it first measures the per-step cost alone (step
level, see `step_level`), then whole `fit` calls; on the other backends
whole `fit` calls only. Options: --rounds, --epochs, --steps,
--batch-size, --width, --steps-per-execution, --threads, --blocks,
--block, --only, --skip-fit. Ratios are printed for the median and
for the fastest epoch (the least disturbed by other load), for the
process CPU time per epoch (the work done, whatever else runs on the
machine), and as the median over rounds of the CPU-time ratio to the
no-callback run of the same round (paired). The order of the
configurations is shuffled every round.
"""

import argparse
import os
import statistics
import sys
import time


def _threads_asked(argv) -> str:
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "1"


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if _threads_asked(sys.argv) != "0":
    # JAX reads its CPU threading from XLA_FLAGS at import: one thread
    # (any --threads but 0) is set before Keras imports JAX.
    os.environ.setdefault(
        "XLA_FLAGS",
        "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lr  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times, self.cpu_times = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._cpu_start = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)
        self.cpu_times.append(time.process_time() - self._cpu_start)


class BatchHookCyclic(keras.callbacks.Callback):
    """The Keras-era way: set the rate from a batch hook (for context)."""

    def __init__(self, low, high, step_size):
        super().__init__()
        self.low, self.high, self.step_size = low, high, step_size
        self.step = 0

    def on_train_batch_begin(self, batch, logs=None):
        cycle = np.floor(1 + self.step / (2 * self.step_size))
        x = abs(self.step / self.step_size - 2 * cycle + 1)
        rate = self.low + (self.high - self.low) * max(0.0, 1 - x)
        self.model.optimizer.learning_rate.assign(rate)
        self.step += 1


def configurations(steps, only=None):
    """The configurations, all or those named in `only` ("none" always)."""
    step_size = 2 * steps
    every = {
        "none": lambda: [],
        "CyclicLR": lambda: [
            keras_lr.callbacks.CyclicLR(1e-3, 1e-2, step_size=step_size)
        ],
        "OneCycleLR": lambda: [keras_lr.callbacks.OneCycleLR(1e-2)],
        "LearningRateLogger": lambda: [keras_lr.callbacks.LearningRateLogger()],
        "LogRateInBatchLogs": lambda: [
            keras_lr.callbacks.LogRateInBatchLogs()
        ],
        "OneCycleLR+Logger": lambda: [
            keras_lr.callbacks.OneCycleLR(1e-2),
            keras_lr.callbacks.LearningRateLogger(),
        ],
        # No per-step work at all: its ratio shows the noise of the box.
        "ReduceLROnPlateau (control)": lambda: [
            keras_lr.callbacks.ReduceLROnPlateau("loss", patience=2)
        ],
        "batch-hook CLR (context)": lambda: [
            BatchHookCyclic(1e-3, 1e-2, step_size)
        ],
    }
    if not only:
        return every
    unknown = set(only) - set(every)
    if unknown:
        raise SystemExit(f"unknown configurations {sorted(unknown)}")
    return {n: m for n, m in every.items() if n == "none" or n in only}


def build_model(args):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(args.width, activation="relu"),
            keras.layers.Dense(args.width, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        keras.optimizers.SGD(1e-2, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=args.steps_per_execution,
    )
    return model


def step_level(args, x, y) -> None:
    """CPU time per optimizer step, configurations alternating every block.

    The callbacks' `on_train_begin` installs their in-graph parts, then
    the compiled train functions of all configurations are called in
    turn, `--block` steps each, many times: bursts of other load hit all
    of them alike. This isolates the per-step cost (the epoch-end work of
    the callbacks is not in it).
    """
    import tensorflow as tf

    configs = {
        name: make
        for name, make in configurations(args.steps, args.only).items()
        if not name.startswith(("batch-hook", "ReduceLROnPlateau"))
    }
    functions = {}
    for name, make_callbacks in configs.items():
        model = build_model(args)
        model.fit(x[:64], y[:64], batch_size=64, verbose=0)  # builds all
        for callback in make_callbacks():
            callback.set_model(model)
            callback.set_params(
                {"epochs": args.epochs, "steps": args.steps, "verbose": 0}
            )
            callback.on_train_begin()
            callback.on_epoch_begin(0)
        data = tf.data.Dataset.from_tensor_slices((x, y))
        iterator = iter(data.batch(args.batch_size).repeat())
        function = model.make_train_function()
        for _ in range(20):  # warm up
            function(iterator)
        functions[name] = (function, iterator)
    per_step = {name: [] for name in configs}
    order = list(configs)
    shuffler = np.random.default_rng(2)
    calls = max(1, args.block // args.steps_per_execution)
    for _ in range(args.blocks):
        shuffler.shuffle(order)
        for name in order:
            function, iterator = functions[name]
            start = time.process_time()
            for _ in range(calls):
                logs = function(iterator)
            float(logs["loss"])  # wait for the last step
            elapsed = time.process_time() - start
            per_step[name].append(elapsed / (calls * args.steps_per_execution))
    base = statistics.median(per_step["none"])
    print(
        f"\nstep level: {args.blocks} alternating blocks of {args.block} "
        "steps per configuration"
    )
    print(f"{'configuration':<28}{'CPU us/step':>13}{'ratio':>8}")
    for name, times in per_step.items():
        median = statistics.median(times)
        print(f"{name:<28}{median * 1e6:>13.1f}{median / base:>8.3f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra/inter-op threads of TensorFlow or PyTorch, one thread "
        "for JAX's XLA (0: the backend's default); one "
        "thread makes the ratios less sensitive to other load on a shared "
        "box",
    )
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument(
        "--only",
        type=lambda text: [n.strip() for n in text.split(",") if n.strip()],
        default=None,
        help="comma-separated configuration names to run (besides none)",
    )
    parser.add_argument(
        "--skip-fit", action="store_true", help="only the step-level part"
    )
    args = parser.parse_args(argv)
    backend = keras.backend.backend()
    if args.threads and backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    elif args.threads and backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.threads)

    rng = np.random.default_rng(0)
    n = args.steps * args.batch_size
    x = rng.normal(size=(n, 64)).astype("float32")
    y = rng.integers(0, 10, size=n)
    if backend == "tensorflow":
        step_level(args, x, y)
    if args.skip_fit:
        return
    configs = configurations(args.steps, args.only)
    epoch_times = {name: [] for name in configs}
    cpu_times = {name: [] for name in configs}
    paired = {name: [] for name in configs}
    order = list(configs)
    shuffler = np.random.default_rng(1)
    for _ in range(args.rounds):
        # A fresh order every round, so no configuration always runs
        # right after another (or first, on a cold machine).
        shuffler.shuffle(order)
        round_cpu = {}
        for name in order:
            make_callbacks = configs[name]
            model = build_model(args)
            timer = EpochTimer()
            model.fit(
                x,
                y,
                batch_size=args.batch_size,
                epochs=args.epochs,
                verbose=0,
                callbacks=[*make_callbacks(), timer],
            )
            epoch_times[name].extend(timer.times[1:])
            cpu_times[name].extend(timer.cpu_times[1:])
            round_cpu[name] = statistics.median(timer.cpu_times[1:])
            keras.backend.clear_session()
        for name in configs:
            paired[name].append(round_cpu[name] / round_cpu["none"])

    base = statistics.median(epoch_times["none"])
    base_min = min(epoch_times["none"])
    base_cpu = statistics.median(cpu_times["none"])
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{os.cpu_count()} CPUs; {args.rounds} rounds x "
        f"{args.epochs - 1} timed epochs x {args.steps} steps, batch "
        f"{args.batch_size}, width {args.width}, steps_per_execution "
        f"{args.steps_per_execution}, threads {args.threads or 'default'}"
    )
    print(
        f"{'configuration':<28}{'median epoch s':>15}{'ratio':>7}"
        f"{'min epoch s':>13}{'ratio':>7}{'median CPU s':>14}{'ratio':>7}"
        f"{'paired CPU ratio':>18}"
    )
    for name, times in epoch_times.items():
        median, fastest = statistics.median(times), min(times)
        cpu = statistics.median(cpu_times[name])
        print(
            f"{name:<28}{median:>15.4f}{median / base:>7.3f}"
            f"{fastest:>13.4f}{fastest / base_min:>7.3f}"
            f"{cpu:>14.4f}{cpu / base_cpu:>7.3f}"
            f"{statistics.median(paired[name]):>18.3f}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
