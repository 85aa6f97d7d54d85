"""The in-memory data of a `GrowingBatchLoader`: how many samples it
holds, and the batch of given sample ids."""

import warnings

import keras
import numpy as np

from keras_lr import _checks


def is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "__getitem__")


def flatten(value):
    return keras.tree.flatten(value) if value is not None else []


def all_arrays(x) -> bool:
    """Whether `x` is an array or a structure of arrays (else an indexable
    dataset of samples)."""
    return all(is_array(a) for a in flatten(x))


def count(x, y, sample_weight, sample_mode: bool) -> int:
    """The number of samples, after checking that `x`, `y` and
    `sample_weight` agree on it."""
    if sample_mode:
        if not hasattr(x, "__len__") or not hasattr(
            x, "__getitem__"
        ):
            raise TypeError(
                "Argument `x` must be an array, a structure of arrays, "
                "or an indexable dataset with `__len__` and "
                f"`__getitem__`. Received: x of type {type(x)}"
            )
        return len(x)
    lengths = {}
    for name, value in (
        ("x", x),
        ("y", y),
        ("sample_weight", sample_weight),
    ):
        for array in flatten(value):
            if is_array(array):
                lengths.setdefault(name, set()).add(int(array.shape[0]))
            else:
                raise TypeError(
                    f"Argument `{name}` must be an array or a structure "
                    f"of arrays. Received: an item of type "
                    f"{type(array).__name__}"
                )
    for name, found in lengths.items():
        if len(found) > 1:
            raise ValueError(
                f"Argument `{name}` holds arrays of different lengths. "
                f"Received: lengths {sorted(found)}"
            )
    per_arg = {name: found.pop() for name, found in lengths.items()}
    if len(set(per_arg.values())) > 1:
        described = ", ".join(f"len({k})={v}" for k, v in per_arg.items())
        names = " and ".join(f"`{k}`" for k in per_arg)
        raise ValueError(
            f"Arguments {names} must have the same number of samples. "
            f"Received: {described}"
        )
    return per_arg["x"]


def gather(x, y, sample_weight, sample_mode: bool, ids: np.ndarray):
    """The batch `(x, y, sample_weight)` of the samples `ids`."""
    if sample_mode:
        items = [x[int(i)] for i in ids]
        if not isinstance(items[0], (tuple, list)):
            items = [(item,) for item in items]
        batch = keras.tree.map_structure(
            lambda *parts: np.stack(parts), *items
        )
        return tuple(batch)
    batch = [keras.tree.map_structure(lambda a: a[ids], x)]
    if y is not None or sample_weight is not None:
        batch.append(
            None
            if y is None
            else keras.tree.map_structure(lambda a: a[ids], y)
        )
    if sample_weight is not None:
        batch.append(
            keras.tree.map_structure(lambda a: a[ids], sample_weight)
        )
    return tuple(batch)


def capped(batch_size, num_samples: int, stacklevel: int) -> int:
    """`batch_size`, checked, and capped at `num_samples` with a warning."""
    _checks.check_positive_int("batch_size", batch_size)
    if batch_size > num_samples:
        warnings.warn(
            f"`batch_size`={batch_size} is larger than the dataset "
            f"({num_samples} samples); using batch_size={num_samples}.",
            stacklevel=stacklevel + 1,
        )
        batch_size = num_samples
    return int(batch_size)
