"""The workloads of part `choose`: five small problems that ship offline.

Each is a data set split once (train / validation / test, the same for
every seed and every way) and a model small enough that a few hundred
steps take a fraction of a second on one CPU core:

- `digits_mlp`: the digits of the main job, 64 pixels -> 64 ReLU -> 10
  softmax (its model).
- `digits_cnn`: the digits as 8x8x1 images through a 3x3 convolution
  of 8 filters, 2x2 max pooling, a 3x3 convolution of 16 filters and a
  softmax over the flattened 4x4x16 maps.
- `digits_gru`: the digits as sequences of 8 rows of 8 pixels through a
  GRU of 24 units and a softmax.
- `tabular`: scikit-learn's breast cancer table (30 standardized
  features, 2 classes) through 32 ReLU units and a softmax.
- `regression`: scikit-learn's diabetes table (10 standardized
  features, the disease progression standardized) through 32 ReLU units
  to one output, mean squared error; its error column is the RMSE in the
  target's own units.

Searches (the range test, the race, PBT, ASHA, the grid) select on the
validation split; every figure of the table is on the test split.
"""

import dataclasses

import numpy as np

WORKLOADS = ("digits_mlp", "digits_cnn", "digits_gru", "tabular", "regression")
# The split must not move with the seed: seeds vary weights and batches.
SPLIT_SEED = 1234


@dataclasses.dataclass
class Workload:
    """One problem: its split data and how to build its model.

    Attributes:
        name: One of `WORKLOADS`.
        x_train, y_train, x_val, y_val, x_test, y_test: float32 inputs;
            int32 labels, or float32 standardized targets (regression).
        task: `"classification"` or `"regression"`.
        num_outputs: Classes, or 1.
        target_scale: The regression target's standard deviation (RMSE in
            its units is `target_scale` times the standardized one); 1.0
            for a classification.
        description: A line for the results.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str
    num_outputs: int
    target_scale: float
    description: str

    @property
    def metric(self) -> str:
        """The second column: `"accuracy"` or `"rmse"`."""
        return "accuracy" if self.task == "classification" else "rmse"

    def summary(self) -> dict:
        return {
            "name": self.name,
            "task": self.task,
            "train_examples": int(len(self.y_train)),
            "validation_examples": int(len(self.y_val)),
            "test_examples": int(len(self.y_test)),
            "input_shape": list(self.x_train.shape[1:]),
            "description": self.description,
        }

    def build_model(self):
        """A fresh, uncompiled model (seed Keras first)."""
        import keras

        layers = keras.layers
        inputs = keras.Input(self.x_train.shape[1:])
        if self.name == "digits_mlp":
            hidden = layers.Dense(64, activation="relu")(
                layers.Flatten()(inputs)
            )
        elif self.name == "digits_cnn":
            hidden = layers.Conv2D(8, 3, padding="same", activation="relu")(
                inputs
            )
            hidden = layers.MaxPooling2D()(hidden)
            hidden = layers.Conv2D(16, 3, padding="same", activation="relu")(
                hidden
            )
            hidden = layers.Flatten()(hidden)
        elif self.name == "digits_gru":
            hidden = layers.GRU(24)(inputs)
        else:
            hidden = layers.Dense(32, activation="relu")(inputs)
        if self.task == "classification":
            outputs = layers.Dense(self.num_outputs, activation="softmax")(
                hidden
            )
        else:
            outputs = layers.Dense(1)(hidden)
        return inputs, outputs

    @property
    def loss(self) -> str:
        if self.task == "classification":
            return "sparse_categorical_crossentropy"
        return "mean_squared_error"


def _split(x, y, stratify: bool):
    from sklearn.model_selection import train_test_split

    strata = y if stratify else None
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, test_size=0.4, stratify=strata, random_state=SPLIT_SEED
    )
    strata = y_rest if stratify else None
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest,
        y_rest,
        test_size=0.5,
        stratify=strata,
        random_state=SPLIT_SEED,
    )
    return x_train, y_train, x_val, y_val, x_test, y_test


def _standardize(train, *others):
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [((a - mean) / std).astype("float32") for a in (train, *others)]


def load_workload(name: str) -> Workload:
    """The workload `name` (one of `WORKLOADS`), loaded and split."""
    from sklearn import datasets

    if name.startswith("digits"):
        bunch = datasets.load_digits()
        x = (bunch.images / 16.0).astype("float32")
        y = bunch.target.astype("int32")
        if name == "digits_cnn":
            x = x[..., None]
        parts = _split(x, y, stratify=True)
        shape = {
            "digits_mlp": "8x8",
            "digits_cnn": "8x8x1 images",
            "digits_gru": "8 rows of 8 as a sequence",
        }[name]
        description = f"scikit-learn digits, {shape}, 10 classes"
        task, outputs, scale = "classification", 10, 1.0
    elif name == "tabular":
        bunch = datasets.load_breast_cancer()
        parts = list(_split(bunch.data, bunch.target.astype("int32"), True))
        parts[0], parts[2], parts[4] = _standardize(
            parts[0], parts[2], parts[4]
        )
        description = "scikit-learn breast cancer, 30 features, 2 classes"
        task, outputs, scale = "classification", 2, 1.0
    elif name == "regression":
        bunch = datasets.load_diabetes()
        parts = list(_split(bunch.data, bunch.target, False))
        parts[0], parts[2], parts[4] = _standardize(
            parts[0], parts[2], parts[4]
        )
        scale = float(parts[1].std())
        parts[1], parts[3], parts[5] = _standardize(
            parts[1], parts[3], parts[5]
        )
        description = "scikit-learn diabetes, 10 features, 1 target"
        task, outputs = "regression", 1
    else:
        raise ValueError(
            f"Argument `name` must be one of {', '.join(WORKLOADS)}. "
            f"Received: name={name!r}"
        )
    x_train, y_train, x_val, y_val, x_test, y_test = parts
    return Workload(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        task=task,
        num_outputs=outputs,
        target_scale=scale,
        description=(
            f"{description}: {len(y_train)} train / {len(y_val)} "
            f"validation / {len(y_test)} test"
        ),
    )
