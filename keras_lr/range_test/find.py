"""`find_learning_rate`: the range test in one call."""

import warnings

import numpy as np

from keras_lr import _backend
from keras_lr import _checks
from keras_lr.range_test import data
from keras_lr.range_test.callback import LRRangeTest
from keras_lr.range_test.callback import check_compiled
from keras_lr.range_test.result import RangeTestResult


def _data_arguments(x, y, sample_weight, batch_size, num_steps, seed, repeat):
    """The data arguments of `fit` for run `repeat` (see
    `find_learning_rate`)."""
    if data.is_array_data(x):
        n = data.num_samples(x, y, sample_weight)
        rng = np.random.default_rng(None if seed is None else [seed, repeat])
        indices = data.sweep_indices(n, num_steps * batch_size, rng)
        return dict(
            data.fit_rows(x, y, sample_weight, indices, batch_size), epochs=1
        )
    if _backend.is_tf_dataset(x):
        return dict(x=x.repeat().take(num_steps), epochs=1, shuffle=False)
    return dict(x=x, y=y, epochs=num_steps)


def find_learning_rate(
    model,
    x,
    y=None,
    *,
    batch_size=32,
    start_lr=1e-7,
    end_lr=10.0,
    num_steps=100,
    mode="exponential",
    beta=0.98,
    diverge_threshold=4.0,
    repeats=1,
    seed=None,
    verbose=0,
    sample_weight=None,
    callbacks=None,
    warn=True,
) -> RangeTestResult:
    """Runs a learning-rate range test and leaves the model as it was.

    Trains `model` for up to `num_steps` steps while `LRRangeTest` sweeps
    the rate from `start_lr` to `end_lr`, records the loss of each step,
    and stops early when the loss blows up. Whatever happens (finished,
    diverged, non-finite loss, an exception or `KeyboardInterrupt` inside
    `fit`), the model's variables, every optimizer variable and the
    optimizer's rate or schedule are restored bitwise; nothing is written
    to disk. See `keras_lr.callbacks.LRRangeTest` for the details.

    Data: NumPy arrays (or nested lists/dicts of them) are drawn in fresh
    shuffled passes, end to end, so every step has a full batch of
    `batch_size` and the sweep crosses epoch ends; with `repeats > 1` each
    run reshuffles. A `tf.data.Dataset` (already batched) is repeated as
    needed and shuffles as it was built to. Any other input is passed to
    `fit` as it is, and the test stops after `num_steps` steps.

    Args:
        model: A compiled Keras model.
        x: Input data, as for `model.fit`.
        y: Targets, as for `model.fit`.
        batch_size: An integer > 0, for array data.
        start_lr: A Python float > 0. The rate of the first step.
        end_lr: A Python float > `start_lr`. The rate of the last step.
        num_steps: An integer >= 10. Length of the sweep in steps.
        mode: `"exponential"` (default) or `"linear"`.
        beta: A Python float in [0, 1). Smoothing of the loss curve.
        diverge_threshold: A Python float > 1. Stop when the smoothed loss
            exceeds this multiple of its best value.
        repeats: An integer > 0. Runs of the sweep, each from the same
            start with reshuffled data; suggestions report their spread.
        seed: An integer or `None`. Seeds the shuffling of array data.
        verbose: An integer. Passed to `fit`; 1 also prints a summary.
        sample_weight: Optional sample weights for array data.
        callbacks: Optional list of extra callbacks for `fit`.
        warn: A Python bool. Whether to issue the result's warnings (they
            stay readable as `result.warnings()`).

    Returns:
        A `keras_lr.RangeTestResult`.

    Raises:
        ValueError: on a bad argument or a model that is not compiled.

    Warns:
        UserWarning: when the loss never diverged (raise `end_lr`), diverged
            in the first steps (lower `start_lr`), or the curve is too noisy
            for its suggestion to be trusted.

    Example:

    ```python
    result = keras_lr.find_learning_rate(model, x, y, batch_size=128, seed=0)
    lr = result.suggestion()          # "valley"
    result.plot("range_test.png")
    ```
    """
    check_compiled(model)
    _checks.check_positive_int("batch_size", batch_size)
    _checks.check_positive_int("repeats", repeats)
    _checks.check_int("verbose", verbose)
    _checks.check_bool("warn", warn)
    if seed is not None:
        _checks.check_int("seed", seed)
    finder = LRRangeTest(
        start_lr=start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
        mode=mode,
        beta=beta,
        diverge_threshold=diverge_threshold,
        warn=False,
    )
    if data.is_array_data(x):
        data.num_samples(x, y, sample_weight)  # fails before any training
    saved_stop_training = getattr(model, "stop_training", False)
    saved_history = getattr(model, "history", None)
    runs = []
    # Every run starts from the state before the first: the callback
    # restores the last run when the next begins and when the block ends.
    try:
        with finder:
            for repeat in range(repeats):
                fit_kwargs = _data_arguments(
                    x, y, sample_weight, batch_size, num_steps, seed, repeat
                )
                fit_kwargs.update(
                    verbose=verbose, callbacks=[finder] + list(callbacks or [])
                )
                model.fit(**fit_kwargs)
                runs.append(finder.result)
    finally:
        model.stop_training = saved_stop_training
        if saved_history is not None:
            model.history = saved_history
    result = RangeTestResult.from_results(runs)
    if verbose:
        print(finder.summary())
    for message in result.warnings() if warn else ():
        warnings.warn(message, stacklevel=2)
    return result
