"""The race against curve readings and the best fixed rate, on 15 settings.

For each setting: `keras_lr.range_test.choose_learning_rate` (range test,
then a race of 8 candidates by successive halving, scored on a held-out
fifth of the training split; the test split is never seen) picks a rate;
that rate, and the curve's `valley`, `steepest` and fastai-valley readings
of the same range test, are trained with the bank's protocol (5 epochs,
mean held-out loss over 3 seeds on the test split) and compared with the
best rate of the 19-rate grid (1e-4 ... 3.16, factor 10**0.25). The bar:
the race's loss within 10% of the grid's best on at least 90% of settings
and its rate within a factor of 3 of the best on all. Cost: the race's
steps (range test + race) as a fraction of the steps of the 19-rate grid
with one seed.

The first ten settings are `range_test_bank.py`'s (their grids are read
from `bank.json`); the others are new and their grids are trained here
(and written to `--grids`, so a rerun can reuse them with `--reuse`).
With `--fresh`, six held-out settings (`FRESH`) run instead: added after
the race's design and defaults were fixed, to see how the race and the
curve readings carry over to problems nobody looked at while building
them.

    PYTHONPATH=$PWD python benchmarks/range_test_race.py \
        --bank saved_runs/range_test/bank.json \
        --grids saved_runs/range_test/race_grids.json \
        --out saved_runs/range_test/race.json [--fresh]
"""

import argparse
import json
import math
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import range_test_bank as bank  # noqa: E402
import range_test_quality as quality  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.datasets import make_friedman1  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from keras_lr.range_test import RaceResult  # noqa: E402
from keras_lr.range_test import choose_learning_rate  # noqa: E402

EPOCHS = 5
SEEDS = 3


def _standardize(x_train, x_test):
    mean, std = x_train.mean(0), x_train.std(0) + 1e-8
    return (
        ((x_train - mean) / std).astype("float32"),
        ((x_test - mean) / std).astype("float32"),
    )


def _classes(x, y):
    """A stratified 3:1 split of a classification, features standardized."""
    x_train, x_test, y_train, y_test = train_test_split(
        x, y.astype("int32"), test_size=0.25, random_state=0, stratify=y
    )
    return (*_standardize(x_train, x_test), y_train, y_test)


def _regression(x, y):
    """A 3:1 split of a regression, features and target standardized."""
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0
    )
    x_train, x_test = _standardize(x_train, x_test)
    mean, std = y_train.mean(), y_train.std()
    return (
        x_train,
        x_test,
        ((y_train - mean) / std).astype("float32"),
        ((y_test - mean) / std).astype("float32"),
    )


def breast_cancer():
    return _classes(*load_breast_cancer(return_X_y=True))


def diabetes():
    return _regression(*load_diabetes(return_X_y=True))


def classification():
    return _classes(
        *make_classification(
            n_samples=4000,
            n_features=20,
            n_informative=10,
            n_classes=4,
            random_state=0,
        )
    )


def friedman():
    return _regression(
        *make_friedman1(n_samples=2000, noise=1.0, random_state=0)
    )


def moons():
    return _classes(*make_moons(n_samples=2000, noise=0.25, random_state=0))


def _dense(inputs, widths, outputs, batchnorm=False, dropout=0.0):
    def build():
        layers = [keras.Input((inputs,))]
        for width in widths:
            layers.append(keras.layers.Dense(width))
            if batchnorm:
                layers.append(keras.layers.BatchNormalization())
            layers.append(keras.layers.Activation("relu"))
            if dropout:
                layers.append(keras.layers.Dropout(dropout))
        layers.append(keras.layers.Dense(outputs))
        return keras.Sequential(layers)

    return build


def _steps(n_train, batch_size, epochs=EPOCHS):
    return epochs * math.ceil(n_train / batch_size)


def _cosine(optimizer, n_train, batch_size):
    """`optimizer(lr)` under a cosine decay over the protocol's steps."""

    def make(lr):
        return optimizer(
            keras.optimizers.schedules.CosineDecay(
                lr, _steps(n_train, batch_size)
            )
        )

    return make


SCE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

# name: (data, model builder, optimizer factory, loss, batch size).
NEW = {
    "cancer_logistic_sgd_b32": (
        breast_cancer,
        _dense(30, [], 2),
        keras.optimizers.SGD,
        SCE,
        32,
    ),
    "diabetes_mlp_adam_b32": (
        diabetes,
        _dense(10, [64], 1),
        keras.optimizers.Adam,
        keras.losses.MeanSquaredError(),
        32,
    ),
    "mlp64_bn_dropout_sgdm_b32": (
        quality.data,
        _dense(64, [64], 10, batchnorm=True, dropout=0.2),
        lambda lr: keras.optimizers.SGD(lr, momentum=0.9),
        SCE,
        32,
    ),
    "mlp64_cosine_adam_b32": (
        quality.data,
        _dense(64, [64], 10),
        _cosine(keras.optimizers.Adam, 1347, 32),
        SCE,
        32,
    ),
    "mlp64_sgd_b256": (
        quality.data,
        _dense(64, [64], 10),
        keras.optimizers.SGD,
        SCE,
        256,
    ),
}

# Held-out settings: added after the race's design and defaults were fixed
# (commit 06d49d7) and never used to choose anything; they measure how the
# race and the curve readings carry over to problems nobody tuned them on.
FRESH = {
    "classif_mlp64x2_sgdm_b64": (
        classification,
        _dense(20, [64, 64], 4),
        lambda lr: keras.optimizers.SGD(lr, momentum=0.9),
        SCE,
        64,
    ),
    "friedman_mlp64_rmsprop_b32": (
        friedman,
        _dense(10, [64], 1),
        keras.optimizers.RMSprop,
        keras.losses.MeanSquaredError(),
        32,
    ),
    "moons_mlp32x2_adagrad_b32": (
        moons,
        _dense(2, [32, 32], 2),
        keras.optimizers.Adagrad,
        SCE,
        32,
    ),
    "digits_mlp256_nadam_b32": (
        quality.data,
        _dense(64, [256], 10),
        keras.optimizers.Nadam,
        SCE,
        32,
    ),
    "classif_logistic_adam_b128": (
        classification,
        _dense(20, [], 4),
        keras.optimizers.Adam,
        SCE,
        128,
    ),
    "digits_mlp64_adamw_b32": (
        quality.data,
        _dense(64, [64], 10),
        lambda lr: keras.optimizers.AdamW(lr, weight_decay=0.05),
        SCE,
        32,
    ),
}
NEW.update(FRESH)


def setting(name):
    """(splits, build(lr, seed), batch size) of a bank or new setting."""
    if name in bank.SETTINGS:
        return (
            quality.data(),
            lambda lr, seed: bank.make_model(name, lr, seed),
            bank.SETTINGS[name][2],
        )
    data, build, optimizer, loss, batch_size = NEW[name]

    def make(lr, seed):
        keras.utils.set_random_seed(seed)
        model = build()
        model.compile(optimizer(lr), loss)
        return model

    return data(), make, batch_size


def trained_loss(build, lr, splits, batch_size):
    return quality.held_out_loss(build, lr, splits, EPOCHS, batch_size, SEEDS)


def run(name, grid_losses=None, race_kwargs=None):
    splits, build, batch_size = setting(name)
    x_train, _, y_train, _ = splits
    started = time.perf_counter()
    if grid_losses is None:
        grid_losses = [
            trained_loss(build, lr, splits, batch_size) for lr in bank.GRID
        ]
    grid_seconds = time.perf_counter() - started
    model = build(1e-3, 0)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        race = choose_learning_rate(
            model,
            x_train,
            y_train,
            batch_size=batch_size,
            **{"seed": 0, **(race_kwargs or {})},
        )
    curve = race.range_test
    picks = {"race": race.learning_rate}
    for method in ("valley", "steepest"):
        try:
            picks[method] = curve.suggestion(method)
        except ValueError:
            picks[method] = None
    try:
        picks["fastai-valley"] = quality.fastai_valley(
            curve.learning_rates, curve.smoothed_losses
        )
    except ValueError:
        picks["fastai-valley"] = None
    best = int(np.argmin(grid_losses))
    best_lr, best_loss = bank.GRID[best], grid_losses[best]
    rows = {}
    for method, lr in picks.items():
        if lr is None:
            rows[method] = None
            continue
        loss = trained_loss(build, lr, splits, batch_size)
        rows[method] = {
            "lr": lr,
            "loss": loss,
            "loss_ratio": loss / best_loss,
            "lr_factor": max(lr / best_lr, best_lr / lr),
        }
    grid_steps = len(bank.GRID) * _steps(len(x_train), batch_size)
    spent = race.cost["range_test_steps"] + race.cost["race_steps"]
    return {
        "batch_size": batch_size,
        "grid_lrs": bank.GRID,
        "grid_losses": grid_losses,
        "grid_seconds": round(grid_seconds, 1),
        "best_lr": best_lr,
        "best_loss": best_loss,
        "picks": rows,
        "race": race.to_dict(),
        "cost_fraction": spent / grid_steps,
        "grid_steps_one_seed": grid_steps,
    }


METHODS = ("race", "valley", "steepest", "fastai-valley")


def markdown(out) -> str:
    """The table of a study and, per method, how many settings pass."""
    lines = [
        "| setting | best fixed rate (loss) | "
        + " | ".join(METHODS)
        + " | race cost / grid |",
        "|---" * (len(METHODS) + 3) + "|",
    ]
    within = dict.fromkeys(METHODS, 0)
    close = dict.fromkeys(METHODS, 0)
    near = dict.fromkeys(METHODS, 0)
    for name, row in out.items():
        # The grid's near-best rates: every rate whose loss is within 10%
        # of the best (on a flat or noisy grid, several).
        good = [
            lr
            for lr, loss in zip(row["grid_lrs"], row["grid_losses"])
            if math.isfinite(loss) and loss <= 1.10 * row["best_loss"]
        ]
        cells = []
        for method in METHODS:
            pick = row["picks"][method]
            if pick is None:
                cells.append("none")
                continue
            within[method] += pick["loss_ratio"] <= 1.10
            close[method] += pick["lr_factor"] <= 3.0
            near[method] += any(
                max(pick["lr"] / lr, lr / pick["lr"]) <= 3.0 for lr in good
            )
            cells.append(f"{pick['lr']:.3g} ({pick['loss_ratio']:.3f})")
        lines.append(
            f"| {name} | {row['best_lr']:.3g} ({row['best_loss']:.4f}) | "
            + " | ".join(cells)
            + f" | {row['cost_fraction']:.3f} |"
        )
    n = len(out)
    costs = [row["cost_fraction"] for row in out.values()]
    lines.append("")
    for method in METHODS:
        lines.append(
            f"- {method}: loss within 10% of the best on {within[method]} of "
            f"{n}; rate within 3x of the best on {close[method]} of {n}; "
            f"within 3x of a near-best rate (grid loss within 10% of the "
            f"best) on {near[method]} of {n}"
        )
    lines.append(
        f"- race cost against the one-seed 19-rate grid: median "
        f"{np.median(costs):.3f}, max {max(costs):.3f}"
    )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", required=True)
    parser.add_argument("--grids", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the table and counts of --out (no training)",
    )
    parser.add_argument(
        "--plot",
        nargs=2,
        metavar=("NAME", "PNG"),
        action="append",
        default=[],
        help="draw setting NAME's race from --out into PNG (no training)",
    )
    parser.add_argument("--only", nargs="*")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="run the held-out settings (FRESH) instead of the 15",
    )
    parser.add_argument("--candidates", type=int, default=None)
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="`choose_learning_rate`'s seed (default 0): the range test's "
        "batches, the held-out split and the race's batches",
    )
    parser.add_argument(
        "--finalist-epochs",
        type=float,
        default=None,
        help="budget = 4 x this many epochs of the training split's steps "
        "(the finalists' length with reduction 2); default: the default "
        "budget",
    )
    args = parser.parse_args()
    with open(args.bank) as f:
        banked = json.load(f)
    grids = {}
    if args.reuse and os.path.exists(args.grids):
        with open(args.grids) as f:
            grids = json.load(f)
    out = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            out = json.load(f)
    if args.plot or args.markdown:
        for name, path in args.plot:
            RaceResult.from_dict(out[name]["race"]).plot(path)
        if args.markdown:
            print(markdown(out))
        return
    names = args.only or (
        list(FRESH)
        if args.fresh
        else list(bank.SETTINGS) + [n for n in NEW if n not in FRESH]
    )
    for name in names:
        if name in bank.SETTINGS:
            known = banked[name]["grid_losses"]
        else:
            known = grids.get(name)
        race_kwargs = {}
        if args.candidates:
            race_kwargs["candidates"] = args.candidates
        if args.seed is not None:
            race_kwargs["seed"] = args.seed
        if args.finalist_epochs:
            n_train = len(setting(name)[0][0])
            held = round(0.2 * n_train)
            per_epoch = (n_train - held) // setting(name)[2]
            race_kwargs["budget"] = int(4 * args.finalist_epochs * per_epoch)
        started = time.perf_counter()
        out[name] = run(name, known, race_kwargs)
        out[name]["race_kwargs"] = race_kwargs
        out[name]["seconds"] = round(time.perf_counter() - started, 1)
        if name in NEW:
            grids[name] = out[name]["grid_losses"]
            with open(args.grids, "w") as f:
                json.dump(grids, f, indent=1)
        row = out[name]
        text = "  ".join(
            f"{m} {r['lr']:.3g} x{r['loss_ratio']:.3f}"
            for m, r in row["picks"].items()
            if r is not None
        )
        print(
            f"{name}: best {row['best_lr']:.3g} ({row['best_loss']:.4f}); "
            f"{text}; cost {row['cost_fraction']:.3f}; {row['seconds']} s",
            flush=True,
        )
        with open(args.out + ".tmp", "w") as f:
            json.dump(out, f, indent=1)
        os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
