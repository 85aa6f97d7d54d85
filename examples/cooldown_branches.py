"""One stable run, three cooldown lengths: warmup-stable-decay branching.

An MLP on sklearn digits trains at a constant rate (the stable phase) and
is saved once; `keras_lr.cooldown.branch_cooldowns` then loads it three
times and decays the rate (1-sqrt shape, to 0) over 1, 3 and 6 epochs.
For comparison, the same total lengths are trained from scratch with the
same stable phase and `keras_lr.callbacks.AnytimeCooldown` (a WSD run per
length), and with a cosine decay over the whole run. Writes results.md,
history.csv and cooldown_branches.png to `--out` (default
runs/cooldown_branches, which git ignores). The committed results:

    PYTHONPATH=. python examples/cooldown_branches.py \
        --out saved_runs/cooldown_branches

Run time: 35 to 41 s on 2 CPU cores (each run writes its own in
results.md).
"""

import argparse
import csv
import json
import math
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lr  # noqa: E402
from keras_lr.callbacks.anytime_cooldown import AnytimeCooldown  # noqa: E402
from keras_lr.cooldown import branch_cooldowns  # noqa: E402

SEED = 0
RATE = 0.05
BATCH = 32
STABLE_EPOCHS = 15
COOLDOWN_EPOCHS = (1, 3, 6)


def load():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return train_test_split(x, y, test_size=500, random_state=SEED)


def make_model(rate):
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.SGD(rate, momentum=0.9),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def rows(run, history, first_epoch):
    h = history
    return [
        {
            "run": run,
            "epoch": first_epoch + i + 1,
            "learning_rate": h.get("learning_rate", [RATE] * len(h["loss"]))[i],
            "loss": h["loss"][i],
            "test_loss": h["val_loss"][i],
            "test_accuracy": h["val_accuracy"][i],
        }
        for i in range(len(h["loss"]))
    ]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/cooldown_branches")
    return parser.parse_args(argv)


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    began = time.perf_counter()
    x, x_test, y, y_test = load()
    test = (x_test, y_test)
    steps = math.ceil(len(x) / BATCH)
    history, summary = [], []

    # Stable phase, saved once.
    t = time.perf_counter()
    keras.utils.set_random_seed(SEED)
    model = make_model(RATE)
    stable = model.fit(
        x, y, batch_size=BATCH, epochs=STABLE_EPOCHS, validation_data=test,
        verbose=0,
    )
    stable_s = time.perf_counter() - t
    path = os.path.join(args.out, "stable.keras")
    model.save(path)
    history += rows("stable", stable.history, 0)
    loss, acc = model.evaluate(*test, verbose=0)
    summary.append(("stable (no cooldown)", STABLE_EPOCHS * steps, 0, loss,
                    acc, stable_s))

    # Branches: one cooldown of each length from the saved model.
    t = time.perf_counter()
    lengths = [k * steps for k in COOLDOWN_EPOCHS]
    branches = branch_cooldowns(
        path, (x, y), lengths, batch_size=BATCH, validation_data=test,
        seed=SEED,
    )
    branch_s = (time.perf_counter() - t) / len(lengths)
    for k, branch in zip(COOLDOWN_EPOCHS, branches):
        history += rows(f"branch_{k}", branch.history, STABLE_EPOCHS)
        summary.append((f"branch, cooldown {k} ep", branch.start_step +
                        branch.decay_steps, branch.decay_steps,
                        branch.metrics["loss"], branch.metrics["accuracy"],
                        stable_s + branch_s))
    os.remove(path)

    # From scratch: WSD with the same stable phase, and cosine, per length.
    for k, length in zip(COOLDOWN_EPOCHS, lengths):
        total = STABLE_EPOCHS + k
        t = time.perf_counter()
        keras.utils.set_random_seed(SEED)
        wsd = make_model(RATE)
        h = wsd.fit(
            x, y, batch_size=BATCH, epochs=total, validation_data=test,
            verbose=0, callbacks=[AnytimeCooldown(length, start_epoch=15)],
        )
        history += rows(f"wsd_{k}", h.history, 0)
        loss, acc = wsd.evaluate(*test, verbose=0)
        summary.append((f"WSD from scratch, {total} ep", total * steps,
                        length, loss, acc, time.perf_counter() - t))
        t = time.perf_counter()
        keras.utils.set_random_seed(SEED)
        cosine = make_model(
            keras_lr.schedules.CosineDecay(RATE, total * steps)
        )
        h = cosine.fit(
            x, y, batch_size=BATCH, epochs=total, validation_data=test,
            verbose=0,
        )
        history += rows(f"cosine_{k}", h.history, 0)
        loss, acc = cosine.evaluate(*test, verbose=0)
        summary.append((f"cosine from scratch, {total} ep", total * steps,
                        total * steps, loss, acc, time.perf_counter() - t))
    wall = time.perf_counter() - began

    with open(os.path.join(args.out, "history.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    plot(history, steps, args.out)
    write_results(args.out, summary, wall, steps)


def plot(history, steps, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_lr, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = dict(zip(COOLDOWN_EPOCHS, ["tab:blue", "tab:orange", "tab:green"]))

    def series(run):
        picked = [r for r in history if r["run"] == run]
        return [r["epoch"] for r in picked], picked

    epochs, stable = series("stable")
    ax_loss.plot(epochs, [r["test_loss"] for r in stable], "k-",
                 label="stable phase (constant rate)")
    ax_lr.plot([0, STABLE_EPOCHS * steps], [RATE, RATE], "k-")
    for k in COOLDOWN_EPOCHS:
        c = colors[k]
        e, b = series(f"branch_{k}")
        ax_loss.plot([STABLE_EPOCHS, *e], [stable[-1]["test_loss"]] +
                     [r["test_loss"] for r in b], "-o", color=c, ms=3,
                     label=f"branch: cooldown {k} ep")
        e, w = series(f"wsd_{k}")
        ax_loss.plot(e[STABLE_EPOCHS - 1:], [r["test_loss"] for r in w]
                     [STABLE_EPOCHS - 1:], "--", color=c,
                     label=f"WSD from scratch, {STABLE_EPOCHS + k} ep")
        e, cos = series(f"cosine_{k}")
        ax_loss.plot(e[-1], cos[-1]["test_loss"], "x", color=c, ms=10,
                     mew=2, label=f"cosine from scratch, {e[-1]} ep (end)")
        n = k * steps
        i = np.arange(n + 1)
        ax_lr.plot(STABLE_EPOCHS * steps + i, RATE * (1 - np.sqrt(i / n)),
                   color=c, label=f"cooldown {k} ep ({n} steps, 1-sqrt)")
    ax_lr.set(xlabel="optimizer step", ylabel="learning rate",
              title="Rate: one stable phase, three cooldowns")
    ax_lr.legend(fontsize=8)
    ax_loss.set(xlabel="epoch", ylabel="test loss (500 held-out digits)",
                title="Test loss (WSD from scratch lies on its branch)",
               xlim=(7.5, 22), ylim=(0.095, 0.16))
    ax_loss.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "cooldown_branches.png"), dpi=110)


def write_results(out, summary, wall, steps):
    lines = [
        "# Cooldown branches on sklearn digits",
        "",
        f"Run time: {wall:.1f} s (total wall time, {os.cpu_count()} CPU "
        f"cores, {platform.processor() or platform.machine()}).",
        "",
        "Command (from the repository root):",
        "",
        "```",
        f"PYTHONPATH=. python examples/cooldown_branches.py --out {out}",
        "```",
        "",
        f"MLP 64-64-10, SGD(momentum=0.9), stable rate {RATE}, batch {BATCH} "
        f"({steps} steps per epoch), {STABLE_EPOCHS} stable epochs, "
        f"cooldown 1-sqrt to 0, seed {SEED}, 500 held-out test digits. "
        "Per-epoch history: `history.csv`; plot: `cooldown_branches.png`.",
        "",
        "| run | total steps | decay steps | test loss | test accuracy "
        "| wall s |",
        "|---|---|---|---|---|---|",
    ]
    for name, total, decay, loss, acc, seconds in summary:
        lines.append(
            f"| {name} | {total} | {decay} | {loss:.4f} | {acc:.4f} "
            f"| {seconds:.1f} |"
        )
    lines += [
        "",
        "Wall s of a branch: the stable phase plus its own cooldown (the "
        "stable phase is paid once for all branches).",
        "",
        "Versions: " + json.dumps({
            "python": sys.version.split()[0],
            "keras": keras.__version__,
            "numpy": np.__version__,
            "platform": platform.platform(),
        }),
        "",
    ]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
