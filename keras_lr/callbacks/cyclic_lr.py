"""Cyclical learning rates as a callback, with inverse momentum cycling."""

from keras_lr.callbacks._curve import _CurveCallback
from keras_lr.schedules.cyclical import CyclicalLearningRate
from keras_lr.schedules.cyclical import cyclical_learning_rate


class CyclicLR(_CurveCallback):
    """Cycles the learning rate (and the momentum, inversely) during `fit`.

    The rate follows `keras_lr.schedules.CyclicalLearningRate` (the same
    arguments; the three modes and asymmetric half cycles) at every
    optimizer step, computed in-graph from `optimizer.iterations`, so it is
    exact also with `steps_per_execution > 1` and costs no host sync. With
    a momentum to cycle (by default, wherever the optimizer has one) the
    momentum runs the same wave upside down, from `max_momentum` at the
    low rate to `base_momentum` at the high rate:

    ```python
    rate = initial + (maximal - initial) * wave(step) * scale(step)
    momentum = max_momentum - (max_momentum - base_momentum) * wave * scale
    ```

    The cycle starts at step 0 of every fresh `fit()`; `get_state` /
    `set_state` carry its position over a resumed run. After training the
    optimizer follows its own rate again (a float rate set to the last
    rate used) and keeps the last momentum used.

    Args:
        initial_learning_rate: A Python float >= 0. The lower rate.
        maximal_learning_rate: A Python float > `initial_learning_rate`.
        step_size: A Python number > 0. Steps of the rising half cycle.
        mode: `"triangular"`, `"triangular2"` or `"exp_range"`.
        gamma: A Python float in (0, 1]. Decay factor for `"exp_range"`.
        step_size_down: A Python number > 0 or `None` (same as
            `step_size`). Steps of the falling half cycle.
        scale_fn: `None` or a callable of one tensor, written with
            `keras.ops`, replacing `mode`.
        scale_mode: `"cycle"` or `"iterations"`: what `scale_fn` receives.
        cycle_momentum: `None` (default: cycle the momentum where the
            optimizer has one: SGD created with `momentum > 0`, or an
            Adam-family `beta_1`), `True` (required: an error otherwise)
            or `False`.
        base_momentum: A Python float in [0, 1]. Momentum at the peak rate.
        max_momentum: A Python float in [0, 1]. Momentum at the low rate.
        verbose: An int. 1: print the rate at the end of every epoch.

    Raises:
        ValueError: for invalid schedule arguments (as
            `CyclicalLearningRate`), and at `on_train_begin` when
            `cycle_momentum=True` and the optimizer has no momentum to
            cycle (e.g. `SGD(momentum=0.0)`).

    Example:

    ```python
    model.compile(keras.optimizers.SGD(momentum=0.9), "mse")
    model.fit(x, y, epochs=8, callbacks=[
        keras_lr.callbacks.CyclicLR(1e-3, 1e-2, step_size=4 * len(x) // 32)
    ])
    ```

    Reference:
        Smith, "Cyclical Learning Rates for Training Neural Networks",
        WACV 2017.
    """

    def __init__(
        self,
        initial_learning_rate,
        maximal_learning_rate,
        step_size,
        mode="triangular",
        gamma=1.0,
        step_size_down=None,
        scale_fn=None,
        scale_mode="cycle",
        cycle_momentum=None,
        base_momentum=0.85,
        max_momentum=0.95,
        verbose=0,
    ):
        super().__init__(cycle_momentum, base_momentum, max_momentum, verbose)
        # Validates every schedule argument once, with the schedule's words.
        self.schedule = CyclicalLearningRate(
            initial_learning_rate,
            maximal_learning_rate,
            step_size,
            mode=mode,
            gamma=gamma,
            step_size_down=step_size_down,
            scale_fn=scale_fn,
            scale_mode=scale_mode,
        )
        self.initial_learning_rate = initial_learning_rate
        self.maximal_learning_rate = maximal_learning_rate
        self.step_size = step_size
        self.mode = mode
        self.gamma = gamma
        self.step_size_down = step_size_down
        self.scale_fn = scale_fn
        self.scale_mode = scale_mode

    def _schedule(self):
        return self.schedule

    def _momentum_at(self, step):
        # The same wave from `max_momentum` towards `base_momentum`: the
        # pure function does not require its "maximal" to be the larger.
        return cyclical_learning_rate(
            step,
            float(self.max_momentum),
            float(self.base_momentum),
            self.step_size,
            self.step_size_down,
            self.mode,
            self.gamma,
            self.scale_fn,
            self.scale_mode,
        )
