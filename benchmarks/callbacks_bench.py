"""Cost of keras_lr's LR callbacks against the same training with none.

Three measurements, in one process, on a small MLP (2-core CPU box):

1. Step level (`step_level`): the per-step cost of the callbacks' in-graph
   part. Each configuration gets a pair of runners that differ only in
   it, stepped block by block in alternation, and the figure is the
   median of the paired CPU-time ratios with a bootstrap interval; a
   control pair doing the same work on both sides ("none (again)") reads
   the noise of the measurement. A step is what `fit` runs per step: on
   TensorFlow one model's train function traced before and after the
   callbacks went in; on JAX two models' compiled train functions with
   the state threaded through, as JAX's `fit` does; on PyTorch two
   models' eager `train_on_batch`. On JAX and PyTorch the blocks are
   spread over several pairs of models (`--pairs`).
2. Epoch hooks (`epoch_hooks`): CPU time of the callbacks' epoch-begin
   and epoch-end work inside a real `fit`, per epoch (the step level
   leaves it out).
3. Whole `fit` calls (unless --skip-fit): configurations interleaved
   (round robin, shuffled every round) so that drift of the machine hits
   all of them alike; the first epoch of every `fit` (the trace) is left
   out. Ratios for the median and the fastest epoch, the process CPU
   time per epoch, and the median over rounds of the CPU-time ratio to
   the no-callback `fit` of the same round (paired). On a shared box one
   epoch varies by 10 to 20%, so this part cannot resolve a few percent;
   the step level can.

Usage (about 5 minutes):

    PYTHONPATH=$PWD python benchmarks/callbacks_bench.py \
        --only "CyclicLR,OneCycleLR,ReduceLROnPlateau (control)"

Any Keras backend: set KERAS_BACKEND (tensorflow, jax, torch) before the
command. Options: --rounds, --epochs, --steps, --batch-size, --width,
--steps-per-execution, --threads, --blocks, --block, --pairs, --only,
--skip-fit.
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


def _install(callbacks, model, args) -> None:
    """What `fit` does before the first step: the callbacks' in-graph
    parts (curves, momentum) go in."""
    for callback in callbacks:
        callback.set_model(model)
        callback.set_params(
            {"epochs": args.epochs, "steps": args.steps, "verbose": 0}
        )
        callback.on_train_begin()
        callback.on_epoch_begin(0)


def _tensorflow_pair(make_callbacks, args, x, y, driven_first=False):
    """One model, one data iterator and two compiled train functions: the
    one traced before the callbacks went in (a constant-rate step) and the
    one after. Both step the same variables on the same data path."""
    import tensorflow as tf

    model = build_model(args)
    model.fit(x[:64], y[:64], batch_size=64, verbose=0)  # builds all
    data = tf.data.Dataset.from_tensor_slices((x, y))
    iterator = iter(data.batch(args.batch_size).repeat())
    model.make_train_function(force=True)
    plain = model.train_function
    _install(make_callbacks(), model, args)
    model.make_train_function(force=True)
    driven = model.train_function
    calls = max(1, args.block // args.steps_per_execution)

    def runner(function):
        def run():
            for _ in range(calls):
                logs = function(iterator)
            float(logs["loss"])  # wait for the last step

        return run

    return runner(plain), runner(driven)


def _batch_pair(make_callbacks, args, x, y, driven_first=False):
    """Two identical models, one with the callbacks in, stepped by
    `train_on_batch` on the same batches (PyTorch, whose step runs
    eagerly, as in its `fit`). Two model
    instances doing the same work can differ by a percent or two (where
    their weights landed in memory), so `step_level` builds several pairs,
    in both orders."""
    batches = [
        (x[i : i + args.batch_size], y[i : i + args.batch_size])
        for i in range(0, len(x), args.batch_size)
    ]

    def side(callbacks):
        model = build_model(args)
        model.fit(x[:64], y[:64], batch_size=64, verbose=0)
        _install(callbacks, model, args)
        position = [0]

        def run():
            for _ in range(args.block):
                xb, yb = batches[position[0] % len(batches)]
                position[0] += 1
                loss = model.train_on_batch(xb, yb)
            float(np.asarray(loss).ravel()[0])

        return run

    if driven_first:
        driven = side(make_callbacks())
        return side([]), driven
    return side([]), side(make_callbacks())


def _jax_pair(make_callbacks, args, x, y, driven_first=False):
    """Two identical models, one with the callbacks in, each stepped by
    its compiled train function on the same batches with the state
    threaded from step to step, as JAX's `fit` does (`train_on_batch`
    would also write every variable back after each step, a cost `fit`
    pays once per epoch, so each extra variable would count several
    times over). Two model instances can differ by a percent or two, so
    `step_level` builds several pairs, in both orders."""
    import jax

    batches = [
        jax.device_put(
            (x[i : i + args.batch_size], y[i : i + args.batch_size], None)
        )
        for i in range(0, len(x), args.batch_size)
    ]

    def side(callbacks):
        model = build_model(args)
        model.fit(x[:64], y[:64], batch_size=64, verbose=0)
        _install(callbacks, model, args)
        model.make_train_function(force=True)
        function = model.train_function
        state = [
            model._get_jax_state(
                trainable_variables=True,
                non_trainable_variables=True,
                optimizer_variables=True,
                metrics_variables=True,
            )
        ]
        position = [0]

        def run():
            for _ in range(args.block):
                batch = batches[position[0] % len(batches)]
                position[0] += 1
                logs, state[0] = function(state[0], iter([batch]))
            float(logs["loss"])  # wait for the last step

        return run

    if driven_first:
        driven = side(make_callbacks())
        return side([]), driven
    return side([]), side(make_callbacks())


def step_level(args, x, y) -> None:
    """Per-step CPU cost of each configuration, paired block by block.

    Each configuration gets a pair of runners that differ only in the
    callbacks' in-graph part (`_tensorflow_pair`, `_batch_pair`); the two
    run `--block` steps each, one after the other (which goes first
    alternates), `--blocks` times, configurations shuffled every round. The
    figure is the median over blocks of the CPU-time ratio of the two
    sides of a block, with a 95% bootstrap interval of that median; on
    JAX and PyTorch the blocks are spread over `--pairs` pairs of models,
    built afresh in both orders, and the bootstrap resamples the pairs
    too (two instances of one model can differ by a percent or two). The
    control `none (again)` pairs two runners doing the same work: its
    ratio and interval show the measurement's own noise. The callbacks'
    epoch-end work is not in this figure (`epoch_hooks` times it).
    """
    pair = {"tensorflow": _tensorflow_pair, "jax": _jax_pair}.get(
        keras.backend.backend(), _batch_pair
    )
    configs = {
        name: make
        for name, make in configurations(args.steps, args.only).items()
        if not name.startswith(("batch-hook", "ReduceLROnPlateau"))
    }
    configs["none (again)"] = configs.pop("none")
    # TensorFlow's two sides share one model; elsewhere each pair is two
    # models, built afresh `--pairs` times so that no one instance's speed
    # decides the figure.
    pairs = 1 if pair is _tensorflow_pair else max(1, args.pairs)
    ratios = {name: [[] for _ in range(pairs)] for name in configs}
    plain_times = {name: [] for name in configs}
    order = list(configs)
    shuffler = np.random.default_rng(2)
    block = 0
    for index in range(pairs):
        runners = {}
        for name, make_callbacks in configs.items():
            plain, driven = pair(
                make_callbacks, args, x, y, driven_first=index % 2 == 1
            )
            for _ in range(2):  # warm up both
                plain()
                driven()
            runners[name] = (plain, driven)
        for _ in range(-(-args.blocks // pairs)):
            shuffler.shuffle(order)
            for name in order:
                plain, driven = runners[name]
                sides = (plain, driven) if block % 2 == 0 else (driven, plain)
                times = {}
                for side in sides:
                    start = time.process_time()
                    side()
                    times[side] = time.process_time() - start
                ratios[name][index].append(times[driven] / times[plain])
                plain_times[name].append(times[plain] / args.block)
            block += 1
    blocks = len(plain_times[order[0]])
    print(
        f"\nstep level ({keras.backend.backend()}): {blocks} blocks of "
        f"{args.block} steps per side, paired"
        + (f", over {pairs} pairs of models" if pairs > 1 else "")
    )
    print(
        f"{'configuration':<28}{'paired ratio':>13}{'95% interval':>18}"
        f"{'us/step without':>17}{'extra us/step':>15}"
    )
    resampler = np.random.default_rng(3)
    for name, per_pair in ratios.items():
        per_pair = [np.asarray(values) for values in per_pair]
        values = np.concatenate(per_pair)
        medians = []
        for _ in range(2000):
            # Resample the pairs, then the blocks within each: the
            # interval carries the spread between model instances too.
            chosen = resampler.integers(0, pairs, pairs)
            drawn = []
            for i in chosen:
                size = len(per_pair[i])
                drawn.append(per_pair[i][resampler.integers(0, size, size)])
            medians.append(np.median(np.concatenate(drawn)))
        low, high = np.percentile(medians, [2.5, 97.5])
        per_step = 1e6 * np.median(plain_times[name])
        print(
            f"{name:<28}{np.median(values):>13.3f}"
            f"{f'{low:.3f} - {high:.3f}':>18}"
            f"{per_step:>17.1f}{per_step * (np.median(values) - 1):>15.1f}"
        )
    sys.stdout.flush()


def _timed(method, spent: list):
    def call(*args, **kwargs):
        start = time.process_time()
        try:
            return method(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - start

    return call


def epoch_hooks(args, x, y) -> None:
    """CPU time of the callbacks' epoch hooks in a real `fit` (what the
    step level leaves out), per epoch."""
    configs = configurations(args.steps, args.only)
    print(f"\n{'epoch hooks':<28}{'CPU ms/epoch':>13}")
    epochs = 6
    for name, make_callbacks in configs.items():
        if name == "none" or name.startswith("batch-hook"):
            continue
        model = build_model(args)
        callbacks = make_callbacks()
        spent = [0.0]
        for callback in callbacks:
            for hook in ("on_epoch_begin", "on_epoch_end"):
                setattr(callback, hook, _timed(getattr(callback, hook), spent))
        model.fit(
            x[: 4 * args.batch_size],
            y[: 4 * args.batch_size],
            batch_size=args.batch_size,
            epochs=epochs,
            verbose=0,
            callbacks=callbacks,
        )
        print(f"{name:<28}{spent[0] / epochs * 1e3:>13.2f}")
    sys.stdout.flush()


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
        "--pairs",
        type=int,
        default=10,
        help="pairs of models the step level spreads its blocks over (JAX "
        "and PyTorch; TensorFlow's two sides share one model)",
    )
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
    step_level(args, x, y)
    epoch_hooks(args, x, y)
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
