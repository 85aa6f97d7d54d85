"""Cosine, one-cycle, warmup-stable-decay and schedule-free, on the digits.

The same MLP (64-64-10) on scikit-learn's digits, AdamW for every
schedule, the same number of steps and the same peak rate, 3 seeds:

- `cosine`: `CosineDecay` with a 5% linear warmup to the peak;
- `one_cycle`: `OneCycle` (PyTorch's `OneCycleLR` values);
- `wsd_linear`, `wsd_cosine`, `wsd_1-sqrt`: `WarmupStableDecay` with a 5%
  warmup and a cooldown over the last 20% of the steps, in each shape;
- `schedule_free`: Keras' `ScheduleFreeAdamW` (5% warmup), evaluated at
  its averaged weights by `keras_lr.callbacks.SwapScheduleFreeWeights`.

Writes `results.md`, `history.csv`, `summary.json` and `curves.png` to
`--out` (default runs/schedule_comparison, which git ignores). The
committed results:

    PYTHONPATH=$PWD python examples/schedule_comparison.py \
        --out saved_runs/schedule_comparison

About 2 to 3 minutes on 2 CPU cores.
"""

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_lr  # noqa: E402

CONFIGS = (
    "cosine",
    "one_cycle",
    "wsd_linear",
    "wsd_cosine",
    "wsd_1-sqrt",
    "schedule_free",
)


def digits(split_seed=0, test_size=450):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return train_test_split(
        x, y, test_size=test_size, random_state=split_seed, stratify=y
    )


def optimizer_for(name, peak, total, weight_decay):
    warmup = max(1, round(0.05 * total))
    schedules = keras_lr.schedules
    if name == "schedule_free":
        return keras.optimizers.ScheduleFreeAdamW(
            peak, warmup_steps=warmup, weight_decay=weight_decay
        )
    if name == "cosine":
        rate = schedules.CosineDecay(
            0.0, total - warmup, warmup_target=peak, warmup_steps=warmup
        )
    elif name == "one_cycle":
        rate = schedules.OneCycle(peak, total)
    else:
        decay = round(0.2 * total)
        rate = schedules.WarmupStableDecay(
            peak,
            warmup_steps=warmup,
            stable_steps=total - warmup - decay,
            decay_steps=decay,
            decay_shape=name.removeprefix("wsd_"),
        )
    return keras.optimizers.AdamW(rate, weight_decay=weight_decay)


def run(name, seed, data, args):
    x_train, x_test, y_train, y_test = data
    keras.utils.set_random_seed(seed)
    steps = -(-len(x_train) // args.batch_size)
    total = steps * args.epochs
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer_for(name, args.peak, total, args.weight_decay),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    callbacks = [keras_lr.callbacks.LearningRateLogger()]
    if name == "schedule_free":
        callbacks.append(keras_lr.callbacks.SwapScheduleFreeWeights())
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(x_test, y_test),
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    # After fit the model holds the weights it would be saved with (for
    # schedule-free: the averaged ones).
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    return history.history, loss, accuracy, seconds, total


def plot(rows, rates, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in CONFIGS:
        curves = np.array([r["val_loss"] for r in rows if r["config"] == name])
        epochs = np.arange(1, curves.shape[1] + 1)
        mean = curves.mean(axis=0)
        (line,) = left.plot(epochs, mean, label=name)
        left.fill_between(
            epochs,
            curves.min(axis=0),
            curves.max(axis=0),
            color=line.get_color(),
            alpha=0.15,
        )
        right.plot(rates[name], label=name, color=line.get_color())
    left.set_xlabel("epoch")
    left.set_ylabel("validation loss (mean; band: min-max of 3 seeds)")
    left.set_yscale("log")
    left.legend()
    right.set_xlabel("optimizer step")
    right.set_ylabel("learning rate (seed 0)")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "curves.png"), dpi=110)
    plt.close(fig)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/schedule_comparison")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--peak", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    data = digits()
    rows, summary, rates = [], {}, {}
    started = time.perf_counter()
    for name in CONFIGS:
        finals = []
        for seed in args.seeds:
            history, loss, accuracy, seconds, total = run(
                name, seed, data, args
            )
            print(
                f"{name} seed {seed}: test loss {loss:.4f}, accuracy "
                f"{accuracy:.4f} ({seconds:.1f} s)",
                flush=True,
            )
            finals.append((loss, accuracy))
            rows.append(
                {
                    "config": name,
                    "seed": seed,
                    "val_loss": history["val_loss"],
                    "val_accuracy": history["val_accuracy"],
                }
            )
            if seed == args.seeds[0]:
                rates[name] = history["learning_rate_per_step"]
        losses = [f[0] for f in finals]
        accuracies = [f[1] for f in finals]
        summary[name] = {
            "test_loss_mean": statistics.mean(losses),
            "test_loss_std": statistics.stdev(losses),
            "test_accuracy_mean": statistics.mean(accuracies),
            "test_accuracy_std": statistics.stdev(accuracies),
            "steps": total,
        }
    elapsed = time.perf_counter() - started
    with open(os.path.join(args.out, "history.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["config", "seed", "epoch", "val_loss", "val_accuracy"])
        for row in rows:
            for epoch, (a, b) in enumerate(
                zip(row["val_loss"], row["val_accuracy"]), 1
            ):
                writer.writerow([row["config"], row["seed"], epoch, a, b])
    environment = {
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(
            {
                "config": vars(args),
                "results": summary,
                "environment": environment,
                "wall_seconds": elapsed,
            },
            f,
            indent=2,
        )
    lines = [
        "# Schedules compared on the digits",
        "",
        "Command: `PYTHONPATH=$PWD python examples/schedule_comparison.py "
        f"--out {args.out}`",
        "",
        f"MLP 64-64-10, AdamW (weight decay {args.weight_decay}), peak rate "
        f"{args.peak}, batch {args.batch_size}, {args.epochs} epochs "
        f"({summary[CONFIGS[0]]['steps']} steps) for every schedule, seeds "
        f"{args.seeds}; held-out split of 450 digits. Wall time "
        f"{elapsed:.0f} s on {os.cpu_count()} CPU cores "
        f"(keras {keras.__version__}, tensorflow {tf.__version__}).",
        "",
        "| schedule | test loss (mean ± std) | test accuracy (mean ± std) |",
        "|---|---|---|",
    ]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['test_loss_mean']:.4f} ± {s['test_loss_std']:.4f}"
            f" | {s['test_accuracy_mean']:.4f} ± "
            f"{s['test_accuracy_std']:.4f} |"
        )
    lines += ["", "![curves](curves.png)", ""]
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines))
    plot(rows, rates, args.out)
    print(f"done in {elapsed:.0f} s; results in {args.out}")


if __name__ == "__main__":
    main()
