"""The data of a range test and a race: array checks, shuffled streams,
the held-out split.

`find_learning_rate` and `choose_learning_rate` take the same inputs
(NumPy arrays, or nested structures of them, or a batched
`tf.data.Dataset`) and draw array data the same way: fresh seeded
permutations end to end, so every step has a full batch. The race also
holds out part of the data and scores on it; both read it here.
"""

import math

import keras
import numpy as np

from keras_lr import _backend


def is_array_data(x) -> bool:
    """Whether every leaf of `x` is a NumPy array or a tensor."""
    leaves = keras.tree.flatten(x)
    return bool(leaves) and all(
        isinstance(leaf, np.ndarray) or _backend.is_tensor(leaf)
        for leaf in leaves
    )


def num_samples(*structures) -> int:
    """The number of samples shared by every leaf of `structures` (`None`s
    skipped).

    Raises:
        ValueError: when the leaves differ in their first dimension.
    """
    sizes = {
        int(leaf.shape[0])
        for s in structures
        if s is not None
        for leaf in keras.tree.flatten(s)
    }
    if len(sizes) != 1:
        raise ValueError(
            "Arguments `x`, `y` and `sample_weight` must all have the same "
            f"number of samples. Received sizes: {sorted(sizes)}"
        )
    return sizes.pop()


def sweep_indices(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` sample indices: fresh permutations of `range(n)` end to end.

    The sweep crosses epoch ends without a short last batch, and each pass
    over the data is shuffled anew.
    """
    passes = [rng.permutation(n) for _ in range(math.ceil(count / n))]
    return np.concatenate(passes)[:count]


def take(structure, indices):
    """The samples `indices` of every leaf of `structure` (`None` stays
    `None`)."""
    if structure is None:
        return None
    return keras.tree.map_structure(
        lambda leaf: np.asarray(leaf)[indices], structure
    )


def fit_rows(x, y, sample_weight, indices, batch_size: int) -> dict:
    """`fit` arguments that train on the rows `indices` of array data, in
    that order."""
    return dict(
        x=take(x, indices),
        y=take(y, indices),
        sample_weight=take(sample_weight, indices),
        batch_size=batch_size,
        shuffle=False,
    )


def as_tensors(structure):
    """`structure` with every leaf converted to a tensor (`None` stays
    `None`)."""
    if structure is None:
        return None
    return keras.tree.map_structure(keras.ops.convert_to_tensor, structure)


def split(x, y, sample_weight, validation_split, batch_size, seed):
    """(train, held-out) parts of array data, each `(x, y, sample_weight)`:
    a seeded shuffle, then the last `validation_split` of it held out.

    Raises:
        ValueError: when nothing would be held out, or fewer than
            `batch_size` samples would be left to train on.
    """
    n = num_samples(x, y, sample_weight)
    held = int(round(n * validation_split))
    if held < 1 or n - held < batch_size:
        raise ValueError(
            "Argument `validation_split` leaves no samples to hold out or "
            f"fewer than batch_size={batch_size} to train on: {n} samples "
            f"split {n - held}/{held}. Pass `validation_data`, or more data. "
            f"Received: validation_split={validation_split!r}"
        )
    order = np.random.default_rng(seed).permutation(n)
    train, test = order[: n - held], order[n - held :]
    parts = [
        tuple(take(s, idx) for s in (x, y, sample_weight))
        for idx in (train, test)
    ]
    return parts[0], parts[1]


def held_out(validation_data) -> dict:
    """`validation_data` as `dict(x=, y=, sample_weight=)`, or `dict(x=)`
    for a batched `tf.data.Dataset`.

    Raises:
        ValueError: unless it is a dataset or a tuple of 2 or 3.
    """
    if _backend.is_tf_dataset(validation_data):
        return dict(x=validation_data)
    if not isinstance(validation_data, (tuple, list)) or not (
        2 <= len(validation_data) <= 3
    ):
        raise ValueError(
            "Argument `validation_data` must be a tuple `(x, y)` or "
            "`(x, y, sample_weight)`, or a batched `tf.data.Dataset`. "
            f"Received: validation_data of type {type(validation_data)}"
        )
    x, y, *rest = validation_data
    return dict(x=x, y=y, sample_weight=rest[0] if rest else None)
