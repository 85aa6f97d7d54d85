"""Does the range test's suggestion help? A check on scikit-learn's digits.

For SGD and for Adam: a range test on a small MLP suggests a rate; a short
training at that rate is compared with the same training at each rate of a
fixed grid (1e-4, 3e-4, 1e-3, ..., 0.3, 1). The bar: the suggested rate's
held-out loss is within 10% of the grid's best, and the suggestion lies
within a factor of 10 of the grid's best rate. Losses are averaged over
`--seeds` training seeds (same seeds for every rate).

    PYTHONPATH=$PWD python benchmarks/range_test_quality.py
"""

import argparse
import math
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import keras_lr  # noqa: E402

# 1e-4 ... 1 in steps of about 3 (3 and 3.33), both ends included.
GRID = [m * 10.0**e for e in range(-4, 1) for m in (1.0, 3.0)][:-1]
OPTIMIZERS = {
    "sgd": lambda lr: keras.optimizers.SGD(lr),
    "adam": lambda lr: keras.optimizers.Adam(lr),
}


def data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return train_test_split(
        x, y.astype("int32"), test_size=0.25, random_state=0, stratify=y
    )


def mlp(widths):
    """A builder of an MLP on the 64 digit pixels: ReLU layers of `widths`,
    then 10 logits."""

    def build():
        layers = [keras.Input((64,))]
        layers += [keras.layers.Dense(w, activation="relu") for w in widths]
        return keras.Sequential(layers + [keras.layers.Dense(10)])

    return build


# The quality check's model: MLP 64-64-10.
MLP64 = mlp([64])


def make_model(optimizer, seed, build=MLP64):
    """`build()`, seeded with `seed`, compiled with `optimizer`."""
    keras.utils.set_random_seed(seed)
    model = build()
    model.compile(
        optimizer,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def fastai_valley(learning_rates, smoothed_losses) -> float:
    """fastai's `valley` rule, rewritten from its published description.

    A reference, not part of keras_lr: drop the first tenth and the last 5
    points, find the longest strictly decreasing subsequence of the
    smoothed losses (not necessarily consecutive points), and take the
    point a third plus a sixth of the way from its start to its end.
    """
    n = len(smoothed_losses)
    lrs = np.asarray(learning_rates)[n // 10 : n - 5]
    losses = np.asarray(smoothed_losses)[n // 10 : n - 5]
    keep = np.isfinite(losses)
    lrs, losses = lrs[keep], losses[keep]
    length = np.ones(losses.size, dtype=int)
    for i in range(1, losses.size):
        earlier = length[:i][losses[:i] > losses[i]]
        if earlier.size:
            length[i] = earlier.max() + 1
    end = int(np.argmax(length))
    start = end - int(length[end])
    third = (end - start) / 3
    return float(lrs[start + int(third) + int(third / 2)])


def builder(name):
    """`build(lr, seed)` -> the compiled MLP with optimizer `name`."""
    return lambda lr, seed: make_model(OPTIMIZERS[name](lr), seed)


def held_out_loss(build, lr, splits, epochs, batch_size, seeds):
    """Mean held-out loss of `seeds` trainings of `build(lr, seed)`."""
    x_train, x_test, y_train, y_test = splits
    losses = []
    for seed in range(seeds):
        model = build(lr, seed)
        model.fit(
            x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0
        )
        loss = float(model.evaluate(x_test, y_test, verbose=0))
        losses.append(loss if math.isfinite(loss) else math.inf)
    return float(np.mean(losses))


def range_test(build, x, y, batch_size=32, repeats=3, **kwargs):
    """The range test on `build(1e-3, 0)`: (result, warning messages)."""
    model = build(1e-3, 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = keras_lr.find_learning_rate(
            model,
            x,
            y,
            batch_size=batch_size,
            repeats=repeats,
            seed=0,
            **kwargs,
        )
    return result, [str(w.message) for w in caught]


def evaluate(name, epochs=5, batch_size=32, seeds=3, repeats=3):
    """Returns a dict with the grid, the suggestions and the verdict."""
    splits = data()
    x_train, _, y_train, _ = splits
    build = builder(name)
    result, messages = range_test(
        build, x_train, y_train, batch_size=batch_size, repeats=repeats
    )
    grid = {
        lr: held_out_loss(build, lr, splits, epochs, batch_size, seeds)
        for lr in GRID
    }
    best_lr = min(grid, key=grid.get)
    rows = {}
    for method in ("valley", "steepest", "minimum", "fastai-valley"):
        if method == "fastai-valley":
            values = [
                fastai_valley(run.learning_rates, run.smoothed_losses)
                for run in result.runs
            ]
            spread = {"min": min(values), "max": max(values)}
            lr = float(np.exp(np.mean(np.log(values))))
        else:
            spread = result.suggestion_spread(method)
            lr = result.suggestion(method)
        loss = held_out_loss(build, lr, splits, epochs, batch_size, seeds)
        rows[method] = {
            "lr": lr,
            "spread": spread,
            "loss": loss,
            "loss_ratio": loss / grid[best_lr],
            "lr_factor": max(lr / best_lr, best_lr / lr),
        }
    return {
        "grid": grid,
        "best_lr": best_lr,
        "suggestions": rows,
        "warnings": messages,
        "result": result,
    }


def passes(row) -> bool:
    return row["loss_ratio"] <= 1.10 and row["lr_factor"] <= 10.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plot-dir", default=None)
    args = parser.parse_args()
    print(
        f"digits, MLP 64-64-10, batch 32, {args.epochs} epochs, held-out "
        f"loss averaged over {args.seeds} seeds; range test: defaults, "
        f"repeats={args.repeats}, seed=0"
    )
    for name in OPTIMIZERS:
        out = evaluate(name, args.epochs, 32, args.seeds, args.repeats)
        grid = "  ".join(f"{lr:.2g}:{v:.3f}" for lr, v in out["grid"].items())
        print(f"\n[{name}] grid lr:loss  {grid}")
        print(
            f"[{name}] best grid lr {out['best_lr']:.3g}, "
            f"loss {out['grid'][out['best_lr']]:.4f}"
        )
        print(
            f"{'method':13s} {'lr (gmean)':>10s} {'min':>9s} {'max':>9s} "
            f"{'loss':>8s} {'loss/best':>9s} {'lr factor':>9s} pass"
        )
        for method, row in out["suggestions"].items():
            print(
                f"{method:13s} {row['lr']:10.3g} {row['spread']['min']:9.3g} "
                f"{row['spread']['max']:9.3g} {row['loss']:8.4f} "
                f"{row['loss_ratio']:9.3f} {row['lr_factor']:9.2f} "
                f"{'yes' if passes(row) else 'NO'}"
            )
        for message in out["warnings"]:
            print(f"[{name}] warning: {message}")
        if args.plot_dir:
            os.makedirs(args.plot_dir, exist_ok=True)
            out["result"].plot(
                os.path.join(args.plot_dir, f"range_test_digits_{name}.png"),
                methods=("valley", "steepest", "minimum"),
            )


if __name__ == "__main__":
    main()
