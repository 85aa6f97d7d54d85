"""Plotting helpers (need the `plot` extra: `pip install keras-lr[plot]`)."""

import keras
import numpy as np

from keras_lr import _backend


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the extra
        raise ImportError(
            "Plotting needs matplotlib: pip install 'keras-lr[plot]'"
        ) from error
    return plt


def schedule_values(schedule, num_steps: int) -> np.ndarray:
    """The schedule's rate at steps `0 ... num_steps - 1`, as float64."""
    if not isinstance(num_steps, int) or isinstance(num_steps, bool):
        raise TypeError(
            "Argument `num_steps` must be an integer. "
            f"Received: num_steps={num_steps!r}"
        )
    if num_steps <= 0:
        raise ValueError(
            f"Argument `num_steps` must be > 0. Received: num_steps={num_steps}"
        )
    if _backend.is_tensorflow():
        tf = _backend.tensorflow("schedule_values")
        rates = tf.map_fn(
            lambda step: tf.cast(schedule(step), tf.float64),
            tf.range(num_steps, dtype=tf.int64),
            fn_output_signature=tf.float64,
        )
        return rates.numpy()
    # JAX computes in 32 bits unless its x64 mode is on.
    steps = keras.ops.arange(num_steps, dtype=_backend.int64())
    dtype = _backend.float64()
    rates = keras.ops.vectorized_map(
        lambda step: keras.ops.cast(schedule(step), dtype), steps
    )
    return np.asarray(keras.ops.convert_to_numpy(rates), dtype=np.float64)


def plot_schedule(
    schedule,
    num_steps: int,
    *,
    ax=None,
    path: str | None = None,
    label: str | None = None,
    log_scale: bool = False,
):
    """Draws a schedule's rate over `num_steps` steps.

    Args:
        schedule: Any `keras.optimizers.schedules.LearningRateSchedule`.
        num_steps: A Python int > 0. Steps to draw.
        ax: A matplotlib `Axes` to draw on; a new figure if `None`.
        path: If given, the figure is saved there (PNG by extension).
        label: Legend label; defaults to the schedule's class name.
        log_scale: A bool. Log-scaled rate axis.

    Returns:
        The matplotlib `Axes`.

    Example:

    ```python
    import keras_lr.plot

    keras_lr.plot.plot_schedule(
        keras_lr.schedules.OneCycle(0.1, 200), 200, path="one_cycle.png"
    )
    ```
    """
    plt = _pyplot()
    values = schedule_values(schedule, num_steps)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(
        np.arange(num_steps), values, label=label or type(schedule).__name__
    )
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    if log_scale:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if path is not None:
        ax.legend(fontsize=8)
        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=120)
    return ax
