"""The 1cycle policy as a callback, with inverse momentum cycling."""

from keras_lr.callbacks._curve import _CurveCallback
from keras_lr.schedules.one_cycle import OneCycle
from keras_lr.schedules.one_cycle import one_cycle


class OneCycleLR(_CurveCallback):
    """The 1cycle policy as a callback, with inverse momentum cycling.

    The rate follows `keras_lr.schedules.OneCycle` (PyTorch's `OneCycleLR`
    values) at every optimizer step, in-graph from `optimizer.iterations`.
    With `cycle_momentum=True` the momentum goes `max_momentum ->
    base_momentum -> max_momentum` (fastai's 0.95, 0.85, 0.95) on the same
    phases and annealing:

    ```python
    rate = one_cycle(step, total_steps, maximal / div_factor, maximal,
                     maximal / div_factor / final_div_factor)
    momentum = one_cycle(step, total_steps, max_momentum, base_momentum,
                         max_momentum)
    ```

    When `total_steps` is `None` it is `epochs * steps_per_epoch` of the
    `fit()` call (known at `on_train_begin`; a dataset of unknown length
    needs an explicit `total_steps`). Past the end, the rate holds its
    final value. Position, resume and what the optimizer holds after
    training are as for `keras_lr.callbacks.CyclicLR`.

    Args:
        maximal_learning_rate: A Python float > 0. The peak rate.
        total_steps: A Python int > 0, or `None` (from `fit`'s epochs and
            steps per epoch).
        pct_start: A Python float in (0, 1). Fraction spent rising.
        div_factor: A Python float > 0. `initial = maximal / div_factor`.
        final_div_factor: A Python float > 0. `final = initial /
            final_div_factor`.
        anneal_strategy: `"cos"` or `"linear"`.
        three_phase: A bool. PyTorch's three-phase variant.
        cycle_momentum: `None` (default: where the optimizer has a
            momentum), `True` (required) or `False`. As in `CyclicLR`.
        base_momentum: A Python float in [0, 1]. Momentum at the peak rate.
        max_momentum: A Python float in [0, 1]. Momentum at both ends.
        verbose: An int. 1: print the rate at the end of every epoch.

    Raises:
        ValueError: for invalid schedule arguments (as `OneCycle`), and at
            `on_train_begin` for an unknown number of steps without
            `total_steps`, or `cycle_momentum=True` with an optimizer that
            has no momentum to cycle.

    Example:

    ```python
    model.compile(keras.optimizers.AdamW(), "mse")
    model.fit(x, y, epochs=10,
              callbacks=[keras_lr.callbacks.OneCycleLR(1e-2)])
    ```

    Reference:
        Smith & Topin, "Super-Convergence: Very Fast Training of Neural
        Networks Using Large Learning Rates", 2018.
    """

    def __init__(
        self,
        maximal_learning_rate,
        total_steps=None,
        pct_start=0.3,
        div_factor=25.0,
        final_div_factor=1e4,
        anneal_strategy="cos",
        three_phase=False,
        cycle_momentum=None,
        base_momentum=0.85,
        max_momentum=0.95,
        verbose=0,
    ):
        super().__init__(cycle_momentum, base_momentum, max_momentum, verbose)
        self.maximal_learning_rate = maximal_learning_rate
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.anneal_strategy = anneal_strategy
        self.three_phase = three_phase
        self.schedule = None
        # Validate now; with `total_steps=None` use a stand-in length.
        self._make(total_steps if total_steps is not None else 10**6)
        self._total = total_steps
        self._resumed_total = False

    def _make(self, total_steps):
        return OneCycle(
            self.maximal_learning_rate,
            total_steps,
            pct_start=self.pct_start,
            div_factor=self.div_factor,
            final_div_factor=self.final_div_factor,
            anneal_strategy=self.anneal_strategy,
            three_phase=self.three_phase,
        )

    def _prepare(self):
        if self.total_steps is not None:
            self._total = self.total_steps
        elif not self._resumed_total:
            epochs = self.params.get("epochs")
            steps = self.params.get("steps")
            if not epochs or not steps:
                raise ValueError(
                    "Argument `total_steps` is required when `fit` does not "
                    "know the number of steps per epoch (a dataset of "
                    f"unknown length). Received: total_steps=None, "
                    f"epochs={epochs!r}, steps={steps!r}"
                )
            self._total = int(epochs) * int(steps)
        self._resumed_total = False
        self.schedule = self._make(self._total)

    def _schedule(self):
        return self.schedule

    def _momentum_at(self, step):
        return one_cycle(
            step,
            self._total,
            float(self.max_momentum),
            float(self.base_momentum),
            float(self.max_momentum),
            self.pct_start,
            self.anneal_strategy,
            self.three_phase,
        )

    def get_state(self) -> dict:
        state = super().get_state()
        state["total_steps"] = self._total
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        total = state.get("total_steps")
        if total is not None:
            self._total = int(total)
            self._resumed_total = True
