"""The race bank: 45 settings nobody tuned the race on, and their split.

Every optimizer Keras 3 ships (SGD plain, with momentum and Nesterov,
Adam, AdamW, Adamax, Nadam, RMSprop, Adagrad, Adadelta, Adafactor, Ftrl,
Lion, Lamb and Muon) three times each, crossed with eleven model families
on data that ships with scikit-learn (digits as a vector, an 8x8 image,
8 rows of 8 or 64 tokens; breast_cancer; wine; diabetes raw and scaled)
and three batch sizes per data set. Not a full cross product: the list is
a fixed rule (`_assign`), so each optimizer meets three families and each
family about four optimizers.

The split into design and held-out settings is a fixed rule too: a
setting is a design setting when the first byte of the SHA-256 of its
name is even (`is_design`). The split is written to
`saved_runs/range_test/race_bank_split.json` and committed before the race
was tuned on anything; only design settings may be used to choose the
race's mechanism or defaults.

`FRESH` is a second held-out set of 15 settings (one per optimizer, none
of them in the 45), fixed by a rule of the same kind and committed after
the first round of the race's rework had seen the held-out results, and
before the race ran on any of them. `THIRD` is a third held-out set of
15 (one per optimizer; three of its families, `NEW_FAMILIES`, appear in
no earlier set), fixed and committed after two rounds had seen `SETTINGS`
and `FRESH`, before the race ran on any of them.

The protocol of every training (grid rates, race picks, curve readings):
the setting's model seeded with `SEED`, `EPOCHS` epochs at a fixed rate
on the 3:1 training split, scored by the loss on the test split.

    PYTHONPATH=$PWD python benchmarks/race_bank_settings.py \
        --split saved_runs/range_test/race_bank_split.json
"""

import argparse
import functools
import hashlib
import json
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.datasets import load_wine  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

EPOCHS = 5
SEED = 0
# The one-seed 19-rate grid, 10**0.25 apart: 1e-4 ... 3.16 by default,
# a decade higher for Adadelta (whose rates are ~1) and a decade lower for
# Lion (whose rates are 3-10x below Adam's), fixed before any run.
GRID = [float(10.0 ** (k / 4)) for k in range(-16, 3)]
GRID_SHIFT = {"adadelta": 1, "lion": -1}


def grid(optimizer: str) -> list[float]:
    shift = 10.0 ** GRID_SHIFT.get(optimizer, 0)
    return [rate * shift for rate in GRID]


# Data ----------------------------------------------------------------------


def _standardize(x_train, x_test):
    mean, std = x_train.mean(0), x_train.std(0) + 1e-8
    return (x_train - mean) / std, (x_test - mean) / std


@functools.cache
def _digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split(
        x, y.astype("int32"), test_size=0.25, random_state=0, stratify=y
    )


def digits_vector():
    x_train, x_test, y_train, y_test = _digits()
    return (
        (x_train / 16.0).astype("float32"),
        (x_test / 16.0).astype("float32"),
        y_train,
        y_test,
    )


def digits_image():
    x_train, x_test, y_train, y_test = digits_vector()
    return (
        x_train.reshape(-1, 8, 8, 1),
        x_test.reshape(-1, 8, 8, 1),
        y_train,
        y_test,
    )


def digits_rows():
    x_train, x_test, y_train, y_test = digits_vector()
    return x_train.reshape(-1, 8, 8), x_test.reshape(-1, 8, 8), y_train, y_test


def digits_tokens():
    """The 64 pixel values (0 ... 16) as tokens."""
    x_train, x_test, y_train, y_test = _digits()
    return x_train.astype("int32"), x_test.astype("int32"), y_train, y_test


def _classes(x, y):
    x_train, x_test, y_train, y_test = train_test_split(
        x, y.astype("int32"), test_size=0.25, random_state=0, stratify=y
    )
    x_train, x_test = _standardize(x_train, x_test)
    return x_train.astype("float32"), x_test.astype("float32"), y_train, y_test


def cancer():
    return _classes(*load_breast_cancer(return_X_y=True))


def wine():
    return _classes(*load_wine(return_X_y=True))


def _diabetes(scaled):
    x, y = load_diabetes(return_X_y=True, scaled=scaled)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0
    )
    mean, std = y_train.mean(), y_train.std()
    return (
        x_train.astype("float32"),
        x_test.astype("float32"),
        ((y_train - mean) / std).astype("float32"),
        ((y_test - mean) / std).astype("float32"),
    )


def diabetes_raw():
    """Unscaled features (age ~50, blood pressure ~95, serum ~100s):
    an ill-conditioned linear regression."""
    return _diabetes(False)


def diabetes_scaled():
    """sklearn's scaled features (each column of norm 1, entries ~0.05):
    ill-conditioned the other way, rates must be large."""
    return _diabetes(True)


# Models --------------------------------------------------------------------


def _mlp(inputs, outputs):
    return keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(outputs),
        ]
    )


def _deep_mlp(inputs, outputs):
    return keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(outputs),
        ]
    )


def _logistic(inputs, outputs):
    return keras.Sequential(
        [keras.Input((inputs,)), keras.layers.Dense(outputs)]
    )


def _residual_mlp():
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(64, activation="gelu")(inputs)
    for _ in range(2):
        branch = keras.layers.LayerNormalization()(hidden)
        branch = keras.layers.Dense(64, activation="gelu")(branch)
        hidden = keras.layers.Add()([hidden, branch])
    return keras.Model(inputs, keras.layers.Dense(10)(hidden))


def _layer_norm_mlp():
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64),
            keras.layers.LayerNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.Dense(64),
            keras.layers.LayerNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.Dense(10),
        ]
    )


def _batch_norm_mlp():
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10),
        ]
    )


def _cnn():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def _recurrent(layer):
    def build():
        return keras.Sequential(
            [keras.Input((8, 8)), layer(32), keras.layers.Dense(10)]
        )

    return build


def _embedding():
    return keras.Sequential(
        [
            keras.Input((64,), dtype="int32"),
            keras.layers.Embedding(17, 8),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def _linear():
    return keras.Sequential([keras.Input((10,)), keras.layers.Dense(1)])


SCE = "sparse_categorical_crossentropy_logits"
MSE = "mse"

# family: (data, model builder, loss, the data's three batch sizes).
FAMILIES = {
    "digits_mlp": (digits_vector, lambda: _mlp(64, 10), SCE, (32, 64, 128)),
    "digits_cnn": (digits_image, _cnn, SCE, (32, 64, 128)),
    "digits_layernorm": (digits_vector, _layer_norm_mlp, SCE, (32, 64, 128)),
    "digits_bn_dropout": (digits_vector, _batch_norm_mlp, SCE, (32, 64, 128)),
    "digits_gru": (
        digits_rows,
        _recurrent(keras.layers.GRU),
        SCE,
        (32, 64, 128),
    ),
    "digits_lstm": (
        digits_rows,
        _recurrent(keras.layers.LSTM),
        SCE,
        (32, 64, 128),
    ),
    "digits_embedding": (digits_tokens, _embedding, SCE, (32, 64, 128)),
    "cancer_mlp": (cancer, lambda: _mlp(30, 2), SCE, (16, 32, 64)),
    "wine_mlp": (wine, lambda: _mlp(13, 3), SCE, (8, 16, 32)),
    "diabetes_raw_linear": (diabetes_raw, _linear, MSE, (16, 32, 64)),
    "diabetes_scaled_linear": (diabetes_scaled, _linear, MSE, (16, 32, 64)),
}

OPTIMIZERS = {
    "sgd": lambda lr: keras.optimizers.SGD(lr),
    "sgdm": lambda lr: keras.optimizers.SGD(lr, momentum=0.9),
    "nesterov": lambda lr: keras.optimizers.SGD(
        lr, momentum=0.9, nesterov=True
    ),
    "adam": lambda lr: keras.optimizers.Adam(lr),
    "adamw": lambda lr: keras.optimizers.AdamW(lr),
    "adamax": lambda lr: keras.optimizers.Adamax(lr),
    "nadam": lambda lr: keras.optimizers.Nadam(lr),
    "rmsprop": lambda lr: keras.optimizers.RMSprop(lr),
    "adagrad": lambda lr: keras.optimizers.Adagrad(lr),
    "adadelta": lambda lr: keras.optimizers.Adadelta(lr),
    "adafactor": lambda lr: keras.optimizers.Adafactor(lr),
    "ftrl": lambda lr: keras.optimizers.Ftrl(lr),
    "lion": lambda lr: keras.optimizers.Lion(lr),
    "lamb": lambda lr: keras.optimizers.Lamb(lr),
}
if hasattr(keras.optimizers, "Muon"):
    OPTIMIZERS["muon"] = lambda lr: keras.optimizers.Muon(lr)


# Families first used by the third set (`THIRD`): kept apart so that the
# rules of `SETTINGS` and `FRESH`, which index `FAMILIES`, stay as they
# were committed.
NEW_FAMILIES = {
    "digits_deep_mlp": (
        digits_vector,
        lambda: _deep_mlp(64, 10),
        SCE,
        (32, 64, 128),
    ),
    "cancer_logistic": (cancer, lambda: _logistic(30, 2), SCE, (16, 32, 64)),
    "digits_gelu_residual": (digits_vector, _residual_mlp, SCE, (32, 64, 128)),
}


def _assign() -> dict:
    """The fixed list: optimizer `i`'s `j`-th setting (j = 0, 1, 2) is
    family `(3 i + j) mod 11` at that data's batch size `(i + j) mod 3`."""
    families = list(FAMILIES)
    settings = {}
    for i, optimizer in enumerate(OPTIMIZERS):
        for j in range(3):
            family = families[(3 * i + j) % len(families)]
            batch_size = FAMILIES[family][3][(i + j) % 3]
            name = f"{family}_{optimizer}_b{batch_size}"
            settings[name] = (family, optimizer, batch_size)
    return settings


SETTINGS = _assign()


def _fresh() -> dict:
    """A second held-out set, fixed (and committed) after the first round
    of the race's rework had seen the held-out results of `SETTINGS`, and
    before the race ran on any of these: optimizer `i`'s setting is family
    `(3 i + 5) mod 11` at that data's batch size `(i + 1) mod 3`, none of
    them in `SETTINGS`."""
    families = list(FAMILIES)
    settings = {}
    for i, optimizer in enumerate(OPTIMIZERS):
        family = families[(3 * i + 5) % len(families)]
        batch_size = FAMILIES[family][3][(i + 1) % 3]
        name = f"{family}_{optimizer}_b{batch_size}"
        assert name not in SETTINGS, name
        settings[name] = (family, optimizer, batch_size)
    return settings


FRESH = _fresh()


def _third() -> dict:
    """A third held-out set, fixed (and committed) after two rounds of the
    race's rework had seen `SETTINGS` and `FRESH`, and before the race ran
    on any of these: optimizer `i`'s setting is family `(5 i + 6) mod 14`
    of the eleven `FAMILIES` followed by the three `NEW_FAMILIES`, at that
    data's batch size `i mod 3`, none of them in `SETTINGS` or
    `FRESH`."""
    families = list(FAMILIES) + list(NEW_FAMILIES)
    every = {**FAMILIES, **NEW_FAMILIES}
    settings = {}
    for i, optimizer in enumerate(OPTIMIZERS):
        family = families[(5 * i + 6) % len(families)]
        batch_size = every[family][3][i % 3]
        name = f"{family}_{optimizer}_b{batch_size}"
        assert name not in SETTINGS and name not in FRESH, name
        settings[name] = (family, optimizer, batch_size)
    return settings


THIRD = _third()


def _fourth() -> dict:
    """A fourth held-out set, fixed (and committed) after the third round
    had seen `THIRD`, before its grid or any race ran on it, to test the
    third round's refinement and a fall-back only to lower rates on
    settings that chose nothing: optimizer `i`'s setting is family
    `(3 i + 1) mod 14` of the fourteen families at that data's batch size
    `i mod 3` (the first rule of that form with no setting in an earlier
    set)."""
    families = list(FAMILIES) + list(NEW_FAMILIES)
    every = {**FAMILIES, **NEW_FAMILIES}
    settings = {}
    for i, optimizer in enumerate(OPTIMIZERS):
        family = families[(3 * i + 1) % len(families)]
        batch_size = every[family][3][i % 3]
        name = f"{family}_{optimizer}_b{batch_size}"
        assert name not in {**SETTINGS, **FRESH, **THIRD}, name
        settings[name] = (family, optimizer, batch_size)
    return settings


FOURTH = _fourth()
# Every setting, by name.
ALL = {**SETTINGS, **FRESH, **THIRD, **FOURTH}


def is_design(name: str) -> bool:
    """The split rule: design when the first byte of the name's SHA-256
    is even, held-out otherwise."""
    return hashlib.sha256(name.encode()).digest()[0] % 2 == 0


def split() -> dict:
    return {
        "rule": "design iff sha256(name)[0] is even",
        "design": sorted(n for n in SETTINGS if is_design(n)),
        "held_out": sorted(n for n in SETTINGS if not is_design(n)),
        "fresh_rule": "optimizer i: family (3i + 5) mod 11, batch (i + 1) "
        "mod 3; held out",
        "fresh": sorted(FRESH),
        "third_rule": "optimizer i: family (5i + 6) mod 14 (FAMILIES, then "
        "NEW_FAMILIES), batch i mod 3; held out",
        "third": sorted(THIRD),
        "fourth_rule": "optimizer i: family (3i + 1) mod 14 (FAMILIES, then "
        "NEW_FAMILIES), batch i mod 3; held out",
        "fourth": sorted(FOURTH),
    }


def _loss(name):
    if name == MSE:
        return keras.losses.MeanSquaredError()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def setting(name):
    """`(splits, build(lr, seed), batch_size, optimizer name)`."""
    family, optimizer, batch_size = ALL[name]
    load, model, loss, _ = {**FAMILIES, **NEW_FAMILIES}[family]

    def build(lr, seed=SEED):
        keras.utils.set_random_seed(seed)
        network = model()
        network.compile(OPTIMIZERS[optimizer](lr), _loss(loss))
        return network

    return load(), build, batch_size, optimizer


def steps(name) -> int:
    """Training steps of one protocol training."""
    splits, _, batch_size, _ = setting(name)
    return EPOCHS * math.ceil(len(splits[0]) / batch_size)


def trained_loss(name, lr, seed=SEED) -> float:
    """The protocol: test loss after `EPOCHS` epochs at `lr`, seed `SEED`
    (or `seed`: the bars' noise floor), `inf` when it diverged."""
    (x_train, x_test, y_train, y_test), build, batch_size, _ = setting(name)
    model = build(lr, seed=seed)
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=EPOCHS,
        verbose=0,
        shuffle=True,
    )
    loss = float(model.evaluate(x_test, y_test, verbose=0, batch_size=1024))
    return loss if math.isfinite(loss) else math.inf


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True)
    args = parser.parse_args()
    out = split()
    out["settings"] = {
        n: dict(zip(("family", "optimizer", "batch_size"), v))
        for n, v in ALL.items()
    }
    with open(args.split, "w") as f:
        json.dump(out, f, indent=1)
    print(
        f"{len(SETTINGS)} settings: {len(out['design'])} design, "
        f"{len(out['held_out'])} held-out; {len(FRESH)} fresh held-out"
    )
    print(np.unique([v[0] for v in SETTINGS.values()], return_counts=True))


if __name__ == "__main__":
    main()
