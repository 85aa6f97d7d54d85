"""A bank of range-test curves and fixed-rate trainings to judge rules on.

The quality bar (`range_test_quality.py`) has two settings: an MLP on the
digits with SGD and with Adam. A rule for reading a rate off the curve that
is chosen on those two alone may only fit them. This script records, for
more settings (other optimizers, models and batch sizes), the range-test
curves (defaults, `repeats=3, seed=0`) and the held-out loss of a short
training (5 epochs, mean of 3 seeds) at each rate of a fine grid (1e-4 to
about 3, factor 10**0.25). `range_test_rules.py` reads the bank and scores
each suggestion rule on every setting.

    PYTHONPATH=$PWD python benchmarks/range_test_bank.py \
        --out saved_runs/range_test/bank.json [--only NAME ...]
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import range_test_quality as quality  # noqa: E402
from range_test_quality import data  # noqa: E402
from range_test_quality import held_out_loss  # noqa: E402
from range_test_quality import mlp  # noqa: E402
from range_test_quality import range_test  # noqa: E402

GRID = [float(10.0 ** (k / 4)) for k in range(-16, 3)]


def cnn():
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Reshape((8, 8, 1)),
            keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )


# name: (model builder, optimizer factory, batch size). The first two are
# the quality bar's own settings.
SETTINGS = {
    "mlp64_sgd_b32": (mlp([64]), keras.optimizers.SGD, 32),
    "mlp64_adam_b32": (mlp([64]), keras.optimizers.Adam, 32),
    "mlp64_sgdm_b32": (
        mlp([64]),
        lambda lr: keras.optimizers.SGD(lr, momentum=0.9),
        32,
    ),
    "mlp64_rmsprop_b32": (mlp([64]), keras.optimizers.RMSprop, 32),
    "mlp64_adagrad_b32": (mlp([64]), keras.optimizers.Adagrad, 32),
    "linear_sgd_b32": (mlp([]), keras.optimizers.SGD, 32),
    "mlp128x3_sgd_b64": (mlp([128, 128, 128]), keras.optimizers.SGD, 64),
    "mlp128x3_adam_b64": (mlp([128, 128, 128]), keras.optimizers.Adam, 64),
    "cnn_adam_b32": (cnn, keras.optimizers.Adam, 32),
    "cnn_sgdm_b32": (
        cnn,
        lambda lr: keras.optimizers.SGD(lr, momentum=0.9),
        32,
    ),
}


def make_model(name, lr, seed):
    build, optimizer, _ = SETTINGS[name]
    return quality.make_model(optimizer(lr), seed, build)


def record(name, splits, epochs=5, seeds=3):
    x_train, _, y_train, _ = splits
    batch_size = SETTINGS[name][2]
    started = time.perf_counter()
    result, messages = range_test(
        lambda lr, seed: make_model(name, lr, seed),
        x_train,
        y_train,
        batch_size=batch_size,
    )
    grid = [
        held_out_loss(
            lambda lr, seed: make_model(name, lr, seed),
            lr,
            splits,
            epochs,
            batch_size,
            seeds,
        )
        for lr in GRID
    ]
    return {
        "batch_size": batch_size,
        "epochs": epochs,
        "seeds": seeds,
        "grid_lrs": GRID,
        "grid_losses": grid,
        "range_test": result.to_dict(),
        "warnings": messages,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", nargs="*", choices=sorted(SETTINGS))
    args = parser.parse_args()
    bank = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            bank = json.load(f)
    splits = data()
    for name in args.only or SETTINGS:
        bank[name] = record(name, splits)
        best = int(np.argmin(bank[name]["grid_losses"]))
        print(
            f"{name}: best grid lr {GRID[best]:.3g} "
            f"(loss {bank[name]['grid_losses'][best]:.4f}), "
            f"{bank[name]['seconds']} s",
            flush=True,
        )
        with open(args.out + ".tmp", "w") as f:
            json.dump(bank, f, indent=1)
        os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
