"""One stable-phase run, several cooldown lengths (branching)."""

import dataclasses
import math
from collections.abc import Callable
from collections.abc import Sequence

import keras

from keras_lr import _backend
from keras_lr.callbacks.anytime_cooldown import AnytimeCooldown


@dataclasses.dataclass
class CooldownBranch:
    """The result of one cooldown branch.

    Attributes:
        decay_steps: The cooldown's length in optimizer steps.
        start_step: The optimizer step the cooldown started at (the
            saved model's step count).
        history: The branch's `History.history` (per-epoch logs).
        metrics: `model.evaluate` on `validation_data` after the cooldown
            (a dict), or the last epoch's logs without it.
        model: The trained model when `keep_models=True`, else None.
    """

    decay_steps: int
    start_step: int
    history: dict
    metrics: dict
    model: keras.Model | None = None


def _steps_per_epoch(data, batch_size: int | None) -> int:
    if isinstance(data, tuple):
        return math.ceil(len(data[0]) / (batch_size or 32))
    try:
        return len(data)
    except TypeError as error:
        raise ValueError(
            "Argument `data` must be an `(x, y)` tuple, a dataset or loader "
            "with a length, or a function returning one. Received: "
            f"data={data!r} without a length"
        ) from error


def branch_cooldowns(
    model_path: str,
    data,
    lengths: Sequence[int],
    decay_shape: str = "1-sqrt",
    final_learning_rate: float = 0.0,
    batch_size: int | None = None,
    validation_data=None,
    seed: int | None = 0,
    keep_models: bool = False,
    callbacks: Callable[[], list] | None = None,
    verbose: int = 0,
) -> list[CooldownBranch]:
    """Runs a cooldown of each length from one saved stable-phase model.

    A warmup-stable-decay run needs its length only when the cooldown
    starts, so one run at a constant rate, saved once (`model.save(...)`
    to a `.keras` file, which holds the optimizer's state and step), gives
    a model for every budget: each branch loads the file afresh, decays
    the rate it was saved with to `final_learning_rate` over `length`
    steps (`keras_lr.callbacks.AnytimeCooldown(start_epoch=0, ...)`) and
    stops. The branches start from the same weights, optimizer moments
    and step, and (with `seed`) see their data in the same order.

    ```python
    for length in lengths:
        model = keras.models.load_model(model_path)
        model.fit(data, epochs=ceil(length / steps_per_epoch),
                  callbacks=[AnytimeCooldown(length, start_epoch=0)])
    ```

    Args:
        model_path: A string. A compiled model saved with `model.save`
            at the end of the stable phase.
        data: The training data: an `(x, y)` tuple of arrays, a dataset
            or loader with a length, or a function of no arguments that
            returns one (called once per branch, for a fresh iterator).
        lengths: Python ints > 0. Cooldown lengths in optimizer steps.
        decay_shape: `"1-sqrt"`, `"linear"` or `"cosine"`.
        final_learning_rate: A Python float >= 0. The rate at the end.
        batch_size: A Python int, for an `(x, y)` tuple (default 32).
        validation_data: As in `fit`; evaluated after every epoch and at
            the end of each branch.
        seed: A Python int or None. `keras.utils.set_random_seed(seed)`
            before each branch, so that the branches see the same batches.
        keep_models: A bool. Return each branch's trained model.
        callbacks: A function of no arguments returning more callbacks
            for each branch (new objects per branch), or None.
        verbose: An int, passed to `fit` and to the cooldown callback.

    Returns:
        A list of `CooldownBranch`, one per length, in order.

    Raises:
        ValueError: for an empty `lengths` or one that is not > 0, and for
            `data` whose length is unknown.

    Example:

    ```python
    model.fit(x, y, epochs=5)             # constant rate: the stable phase
    model.save("stable.keras")
    branches = keras_lr.cooldown.branch_cooldowns(
        "stable.keras", (x, y), [32, 96],
        validation_data=(x_val, y_val),
    )
    ```

    Reference:
        Hägele et al., "Scaling Laws and Compute-Optimal Training Beyond
        Fixed Training Durations", NeurIPS 2024.
    """
    lengths = list(lengths)
    if not lengths or any(
        not isinstance(n, int) or isinstance(n, bool) or n <= 0
        for n in lengths
    ):
        raise ValueError(
            "Argument `lengths` must be a non-empty list of ints > 0 "
            f"(cooldown lengths in steps). Received: lengths={lengths!r}"
        )
    results = []
    for length in lengths:
        if seed is not None:
            keras.utils.set_random_seed(seed)
        model = keras.models.load_model(model_path)
        start = int(_backend.to_numpy(model.optimizer.iterations))
        branch_data = data() if callable(data) else data
        steps = _steps_per_epoch(branch_data, batch_size)
        cooldown = AnytimeCooldown(
            decay_steps=length,
            decay_shape=decay_shape,
            final_learning_rate=final_learning_rate,
            start_epoch=0,
            verbose=verbose,
        )
        extra = list(callbacks()) if callbacks is not None else []
        fit_args = {}
        if isinstance(branch_data, tuple):
            x, y = branch_data
            fit_args = {"batch_size": batch_size}
        else:
            x, y = branch_data, None
        history = model.fit(
            x,
            y,
            epochs=math.ceil(length / steps),
            validation_data=validation_data,
            verbose=verbose,
            callbacks=[cooldown, *extra],
            **fit_args,
        )
        if validation_data is not None:
            if isinstance(validation_data, tuple):
                metrics = model.evaluate(
                    *validation_data, verbose=0, return_dict=True
                )
            else:
                metrics = model.evaluate(
                    validation_data, verbose=0, return_dict=True
                )
        else:
            metrics = {k: v[-1] for k, v in history.history.items()}
        results.append(
            CooldownBranch(
                decay_steps=length,
                start_step=start,
                history=dict(history.history),
                metrics=metrics,
                model=model if keep_models else None,
            )
        )
    return results
