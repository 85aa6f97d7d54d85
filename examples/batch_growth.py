"""Decay the learning rate, or increase the batch size? On sklearn digits.

Reproduces the comparison of Smith et al. (ICLR 2018) at toy scale: the
same MLP trained with three schedules that change the SGD noise scale
`lr / B` by the same factor at the same epochs:

- `lr_decay`: batch fixed, learning rate divided by `factor` at milestones;
- `batch_growth`: learning rate fixed, batch multiplied by `factor`;
- `hybrid`: batch grown up to `max_batch_size` (default N / 10, the
  paper's advice), the rest of each step applied as learning-rate decay.

Every run feeds the same `keras_lr.data.GrowingBatchLoader` (seeded
shuffling; through `loader.as_dataset()` unless `--input loader`),
evaluates on a held-out test split after every epoch, and counts
parameter updates. Writes config.json, history.csv, summary.json,
two plots and README.md to `--out` (default runs/batch_growth, which git
ignores); a README.md already there keeps what was written into it by
hand, from its first `## ` heading on. The committed results:

    PYTHONPATH=. python examples/batch_growth.py --out saved_runs/batch_growth

Two runs took 35.0 s and 42.8 s (total wall time) on 2 busy CPU cores.
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

SCHEDULES = ("lr_decay", "batch_growth", "hybrid")
COLUMNS = [
    "schedule",
    "seed",
    "epoch",
    "learning_rate",
    "batch_size",
    "updates",
    "loss",
    "accuracy",
    "test_loss",
    "test_accuracy",
    "wall_s",
]


def load_digits(test_size: int, split_seed: int):
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    x, y = sk_load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    y = y.astype("int32")
    return train_test_split(
        x, y, test_size=test_size, random_state=split_seed, stratify=y
    )


def make_model(seed: int, learning_rate: float, momentum: float):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=momentum),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


class WallClock(keras.callbacks.Callback):
    """Adds the seconds since `fit` began to the epoch logs."""

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["wall_s"] = time.perf_counter() - self.start


class EpochLogs(keras.callbacks.Callback):
    """`batch_size`, `updates` and `learning_rate` for the LR-decay run."""

    def __init__(self, loader):
        super().__init__()
        self.loader = loader

    def on_epoch_end(self, epoch, logs=None):
        logs["batch_size"] = self.loader.batch_size
        logs["updates"] = int(self.model.optimizer.iterations.numpy())
        logs["learning_rate"] = float(
            self.model.optimizer.learning_rate.numpy()
        )


def run(name, seed, data, args):
    x_train, x_test, y_train, y_test = data
    model = make_model(seed, args.learning_rate, args.momentum)
    loader = keras_lr.data.GrowingBatchLoader(
        x_train, y_train, batch_size=args.batch_size, seed=seed
    )
    milestones = set(args.milestones)
    if name == "lr_decay":

        def decay(epoch, lr):
            return lr / args.factor if epoch in milestones else lr

        callbacks = [
            keras.callbacks.LearningRateScheduler(decay),
            EpochLogs(loader),
        ]
    else:
        cap = None if name == "batch_growth" else args.max_batch_size
        callbacks = [
            keras_lr.callbacks.BatchSizeScheduler(
                loader,
                keras_lr.callbacks.grow_batch_at(args.milestones, args.factor),
                max_batch_size=cap,
            )
        ]
    if args.input == "as_dataset":
        data, extra = (
            loader.as_dataset(),
            {"steps_per_epoch": loader.steps_per_epoch},
        )
    else:
        data, extra = loader, {}
    history = model.fit(
        data,
        epochs=args.epochs,
        shuffle=False,
        verbose=0,
        validation_data=(x_test, y_test),
        validation_batch_size=512,
        callbacks=[WallClock(), *callbacks],
        **extra,
    )
    rows = []
    logs = history.history
    for epoch in range(args.epochs):
        rows.append(
            {
                "schedule": name,
                "seed": seed,
                "epoch": epoch + 1,
                "learning_rate": logs["learning_rate"][epoch],
                "batch_size": logs["batch_size"][epoch],
                "updates": logs["updates"][epoch],
                "loss": logs["loss"][epoch],
                "accuracy": logs["accuracy"][epoch],
                "test_loss": logs["val_loss"][epoch],
                "test_accuracy": logs["val_accuracy"][epoch],
                "wall_s": logs["wall_s"][epoch],
            }
        )
    return rows


def summarize(rows, args):
    per = {}
    for name in SCHEDULES:
        finals = [
            r
            for r in rows
            if r["schedule"] == name and r["epoch"] == args.epochs
        ]
        acc = [r["test_accuracy"] for r in finals]
        test_loss = [r["test_loss"] for r in finals]
        per[name] = {
            "final_test_accuracy_mean": statistics.mean(acc),
            "final_test_accuracy_std": statistics.stdev(acc)
            if len(acc) > 1
            else 0.0,
            "final_test_accuracy_per_seed": acc,
            "final_test_loss_mean": statistics.mean(test_loss),
            "final_test_loss_per_seed": test_loss,
            "updates": statistics.mean(r["updates"] for r in finals),
            "wall_s_mean": statistics.mean(r["wall_s"] for r in finals),
            "wall_s_per_seed": [r["wall_s"] for r in finals],
            "batch_sizes": sorted(
                {r["batch_size"] for r in rows if r["schedule"] == name}
            ),
        }
    base = per["lr_decay"]
    for name in ("batch_growth", "hybrid"):
        mine = per[name]
        noise = max(
            base["final_test_accuracy_std"], mine["final_test_accuracy_std"]
        )
        diff = (
            mine["final_test_accuracy_mean"] - base["final_test_accuracy_mean"]
        )
        mine["vs_lr_decay"] = {
            "accuracy_difference": diff,
            "seed_std_larger_of_two": noise,
            "within_seed_noise": abs(diff) <= 2 * noise,
            "updates_ratio": base["updates"] / mine["updates"],
            "wall_time_ratio": base["wall_s_mean"] / mine["wall_s_mean"],
        }
    return per


def plot(rows, args, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"lr_decay": "C0", "batch_growth": "C1", "hybrid": "C2"}
    # The three runs of a seed coincide until the first milestone.
    styles = {"lr_decay": "-", "batch_growth": "--", "hybrid": ":"}
    for x_key, file_name, label in (
        ("epoch", "test_accuracy_vs_epochs.png", "epoch"),
        ("updates", "test_accuracy_vs_updates.png", "parameter updates"),
    ):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name in SCHEDULES:
            for i, seed in enumerate(args.seeds):
                mine = [
                    r
                    for r in rows
                    if r["schedule"] == name and r["seed"] == seed
                ]
                ax.plot(
                    [r[x_key] for r in mine],
                    [r["test_accuracy"] for r in mine],
                    color=colors[name],
                    linestyle=styles[name],
                    alpha=0.8,
                    linewidth=1.2,
                    label=name if i == 0 else None,
                )
        for milestone in args.milestones if x_key == "epoch" else []:
            ax.axvline(milestone + 0.5, color="grey", linestyle=":")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy")
        ax.set_ylim(args.plot_ylim, 1.0)
        ax.set_title(
            f"sklearn digits, MLP, {len(args.seeds)} seeds per schedule "
            f"(factor {args.factor:g} at epochs {args.milestones})"
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(os.path.join(out, file_name), dpi=110)
        plt.close(fig)


def hand_written(path) -> str:
    """The part of the README at `path` written by hand: from its first
    `## ` heading on (the generated part has none); "" if there is none."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return ""
    at = text.find("\n## ")
    return "" if at < 0 else text[at + 1 :]


def write_readme(summary, args, command, total_wall, out):
    lines = [
        "# Batch-size growth vs learning-rate decay on sklearn digits",
        "",
        "Command (from the repository root):",
        "",
        "```",
        command,
        "```",
        "",
        f"Total wall time: {total_wall:.1f} s. Versions and hardware: "
        "`summary.json`. Configuration: `config.json`. Per-epoch history "
        "(learning rate, batch size, updates, losses, accuracies, wall "
        "time): `history.csv`.",
        "",
        "Three schedules change the noise scale lr/B by the same factor at "
        "the same epochs; final test accuracy (held-out split, "
        f"{args.test_size} images) over seeds {args.seeds}:",
        "",
        "| schedule | batch sizes | final test acc (mean +- std) "
        "| final test loss (mean) | updates | wall s (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for name in SCHEDULES:
        s = summary[name]
        lines.append(
            f"| {name} | {s['batch_sizes']} | "
            f"{s['final_test_accuracy_mean']:.4f} +- "
            f"{s['final_test_accuracy_std']:.4f} | "
            f"{s['final_test_loss_mean']:.4f} | {s['updates']:.0f} | "
            f"{s['wall_s_mean']:.1f} |"
        )
    lines += ["", "Against `lr_decay` (rule: within noise when |difference| "]
    lines[-1] += "<= 2 x the larger seed standard deviation):"
    lines.append("")
    for name in ("batch_growth", "hybrid"):
        v = summary[name]["vs_lr_decay"]
        lines.append(
            f"- {name}: accuracy difference {v['accuracy_difference']:+.4f} "
            f"(noise {v['seed_std_larger_of_two']:.4f}, within noise: "
            f"{'yes' if v['within_seed_noise'] else 'no'}); "
            f"{v['updates_ratio']:.2f}x fewer updates; wall time ratio "
            f"(lr_decay / {name}) {v['wall_time_ratio']:.2f}."
        )
    lines += [
        "",
        "Plots: `test_accuracy_vs_epochs.png`, "
        "`test_accuracy_vs_updates.png` (the two views of the paper's "
        "figures).",
        "",
    ]
    path = os.path.join(out, "README.md")
    kept = hand_written(path)
    text = "\n".join(lines) + ("\n" + kept if kept else "")
    with open(path, "w") as f:
        f.write(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/batch_growth")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--milestones", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--factor", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument(
        "--max-batch-size",
        default="auto",
        help='hybrid cap: an int or "auto" (N / 10)',
    )
    parser.add_argument(
        "--input",
        choices=["as_dataset", "loader"],
        default="as_dataset",
        help="feed fit with loader.as_dataset() (tf.data) or the loader",
    )
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--plot-ylim", type=float, default=0.75)
    args = parser.parse_args(argv)
    if args.max_batch_size != "auto":
        args.max_batch_size = int(args.max_batch_size)
    return args


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    command = "PYTHONPATH=. python examples/batch_growth.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )

    data = load_digits(args.test_size, args.split_seed)
    config = dict(vars(args))
    config.update(
        train_samples=len(data[0]),
        test_samples=len(data[1]),
        dataset="sklearn.datasets.load_digits (8x8, 10 classes), x / 16",
        model="Dense(128, relu) -> Dense(10), SGD with momentum",
        command=command,
    )
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    rows, start = [], time.perf_counter()
    # Seed-major order spreads machine-load drift over all schedules.
    for seed in args.seeds:
        for name in SCHEDULES:
            rows += run(name, seed, data, args)
            final = rows[-1]
            print(
                f"{name:13s} seed {seed}: test acc "
                f"{final['test_accuracy']:.4f}, {final['updates']} updates, "
                f"{final['wall_s']:.1f} s",
                flush=True,
            )
            keras.backend.clear_session()
    total_wall = time.perf_counter() - start

    with open(os.path.join(args.out, "history.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    summary = summarize(rows, args)
    import matplotlib
    import sklearn

    meta = {
        "results": summary,
        "total_wall_s": total_wall,
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "matplotlib": matplotlib.__version__,
        },
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        },
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(meta, f, indent=2)
    plot(rows, args, args.out)
    write_readme(summary, args, command, total_wall, args.out)
    print(json.dumps(summary, indent=2))
    print(f"total wall time {total_wall:.1f} s; wrote {args.out}")
    return summary


if __name__ == "__main__":
    main()
