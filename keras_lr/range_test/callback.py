"""The learning-rate range test, as a callback inside `model.fit`."""

import math
import warnings

import keras
import numpy as np

from keras_lr import _backend
from keras_lr import _checks
from keras_lr import _keras_internals as internals
from keras_lr import snapshot
from keras_lr.control import rate_controller
from keras_lr.range_test import traced as traced_test
from keras_lr.range_test.result import RangeTestResult
from keras_lr.range_test.suggestions import LossSmoother
from keras_lr.range_test.sweep import SweepConfig


def check_compiled(model) -> None:
    """Raises `ValueError` unless `model` is compiled with an optimizer."""
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ValueError(
            "Argument `model` must be a compiled Keras model (call "
            "`model.compile(optimizer=..., loss=...)` first). Received: "
            f"model={getattr(model, 'name', model)!r} (not compiled)"
        )


class LRRangeTest(keras.callbacks.Callback):
    """Runs a learning-rate range test inside `model.fit`.

    From the first step of `fit`, the optimizer's rate sweeps from
    `start_lr` to `end_lr` over `num_steps` steps (exponentially by
    default), crossing epoch ends. The loss of every step itself (not
    Keras' running mean since the start of the epoch) is recorded in-graph
    and read once per execution, then smoothed with a debiased moving
    average. Training stops when the smoothed loss exceeds
    `diverge_threshold` times its best value, when a loss is not finite, or
    after `num_steps` steps. Then the model's variables and every optimizer
    variable (slots, `iterations`) are put back bitwise, the optimizer's
    rate goes back to the one it was compiled with, and the model's train
    function is put back.

    ```python
    t = i / (num_steps - 1)                  # step i of the sweep
    lr = start_lr * (end_lr / start_lr) ** t
    stop if smoothed_loss[i] > diverge_threshold * min(smoothed_loss[:i + 1])
    ```

    How it stays exact and cheap: the sweep is a curve of the optimizer's
    `keras_lr.control.RateController` (the float32 rounding of
    `keras_lr.range_test.sweep_learning_rates`, looked up in-graph at the
    optimizer's step), so it changes every step even with
    `steps_per_execution > 1` or `jit_compile=True`; the per-step loss is
    written to a non-trainable variable by a thin wrapper around the
    model's `compute_loss` (the loss being optimized, summed over replicas
    under `tf.distribute`, i.e. the global-batch loss), set on the model
    instance for the test and removed after. With `steps_per_execution=N`
    the callback sees the losses once every N steps, so a divergence can
    only stop training at the end of that execution: the steps after the
    divergence point are then run but dropped from the record. The train
    function traced for the test stays with the model, so a second test on
    it does not trace again (unless the model was recompiled). The first
    time the controller is installed on the optimizer, or its curve table
    has to grow, the model's own train function is rebuilt once (it must
    read the controller's table), and that rebuilt function is the one put
    back.

    A plain `fit` calls `on_train_end` only when it returns normally; to
    restore the model when `fit` raises (e.g. `KeyboardInterrupt`), use the
    callback as a context manager, call `restore()`, or use
    `keras_lr.find_learning_rate`, which does both for you.

    Inside a `with` block the restore waits for the end of the block (or
    the next run), so every callback's `on_train_end` still sees the state
    the sweep reached. Several runs (repeats): each `fit` with the callback
    is one run, from the state before the first run of the block; read
    `result` after each. `warn=False` leaves the warnings to the caller
    (`find_learning_rate` joins its repeats' results and warns once for
    all of them).

    Args:
        start_lr: A Python float > 0. The rate of the first step.
        end_lr: A Python float > `start_lr`. The rate of step
            `num_steps - 1`.
        num_steps: An integer >= 10. Length of the sweep in steps.
        mode: `"exponential"` (default) or `"linear"`.
        beta: A Python float in [0, 1). Smoothing of the loss curve.
        diverge_threshold: A Python float > 1. Stop when the smoothed loss
            exceeds this multiple of its best value.
        verbose: An integer. 1 prints a one-line summary at the end.
        warn: A Python bool. Whether the end of each run issues the
            result's warnings (`RangeTestResult.warnings()`).

    Example:

    ```python
    model.compile(keras.optimizers.SGD(), "mse")
    finder = keras_lr.callbacks.LRRangeTest(start_lr=1e-3, end_lr=1.0)
    with finder:
        model.fit(x, y, epochs=5, callbacks=[finder])
    print(finder.result.suggestion())
    finder.result.plot("range_test.png")
    ```

    Reference:
        - [Smith, 2017](https://arxiv.org/abs/1506.01186), section 3.3.
    """

    def __init__(
        self,
        start_lr=1e-7,
        end_lr=10.0,
        num_steps=100,
        mode="exponential",
        beta=0.98,
        diverge_threshold=4.0,
        verbose=0,
        warn=True,
    ):
        super().__init__()
        self._config = SweepConfig(
            start_lr=start_lr,
            end_lr=end_lr,
            num_steps=num_steps,
            mode=mode,
            beta=beta,
            diverge_threshold=diverge_threshold,
        )
        _checks.check_int("verbose", verbose)
        _checks.check_bool("warn", warn)
        self.verbose = verbose
        self.warn = warn
        self._installed = False
        self._in_block = False
        self._resuming = False
        self._reset_record()

    # Configuration, held once in `config` --------------------------------

    @property
    def config(self) -> SweepConfig:
        """The sweep's arguments (`config.to_dict()` is the result's)."""
        return self._config

    @property
    def start_lr(self):
        return self._config.start_lr

    @property
    def end_lr(self):
        return self._config.end_lr

    @property
    def num_steps(self):
        return self._config.num_steps

    @property
    def mode(self):
        return self._config.mode

    @property
    def beta(self):
        return self._config.beta

    @property
    def diverge_threshold(self):
        return self._config.diverge_threshold

    # State of one sweep ---------------------------------------------------

    def _reset_record(self):
        self._losses = []
        self._smoother = LossSmoother(self.beta)
        self._best = math.inf
        self._stop_reason = None

    def _record(self, loss: float) -> None:
        self._losses.append(loss)
        smoothed = self._smoother.add(loss)
        if smoothed < self._best:
            self._best = smoothed
        if not math.isfinite(loss):
            self._stop_reason = "non_finite"
        elif smoothed > self.diverge_threshold * self._best:
            self._stop_reason = "diverged"

    def get_state(self) -> dict:
        return {
            "losses": [float(v) for v in self._losses],
            "stop_reason": self._stop_reason,
        }

    def set_state(self, state: dict) -> None:
        """Resumes from `get_state()`: the next `fit` continues the sweep."""
        self._reset_record()
        for loss in state["losses"]:
            self._record(float(loss))
        self._stop_reason = state["stop_reason"]
        self._resuming = True

    @property
    def result(self) -> RangeTestResult:
        """The curve recorded so far, as a `keras_lr.RangeTestResult`."""
        steps = len(self._losses)
        return RangeTestResult(
            self._config.learning_rates()[:steps],
            np.array(self._losses, dtype=np.float64),
            stop_reason=self._stop_reason or "finished",
            config=self._config.to_dict(),
            smoothed_losses=self._smoother.values,
        )

    # Installing and restoring ---------------------------------------------

    def _snapshot(self):
        model = self.model
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        self._saved_variables = snapshot.training_variables(model)
        self._saved_values = snapshot.take(self._saved_variables)
        self._saved_random_state = snapshot.random_state()

    def _install(self):
        model = self.model
        check_compiled(model)
        self._snapshot()
        controller = rate_controller(model)
        start = controller.step() - len(self._losses)
        # May rebuild the model's train function (a new or larger table):
        # the function saved below is then the rebuilt one.
        controller.set_curve(
            self._config.table(controller.multiplier), first_step=start
        )
        self._controller = controller
        self._saved_train_function = internals.train_function(model)
        self._saved_compute_loss = model.compute_loss
        self._compute_loss_patch = None
        self._installed = True
        key = traced_test.TracedTest.key_of(
            model, self._saved_train_function, self._saved_compute_loss
        )
        traced = traced_test.kept_traced_test(model)
        if traced is None or not traced.matches(key, self.num_steps):
            traced = self._new_traced_test(key)
        traced.begin(start, len(self._losses))
        if traced.metric is not None:
            internals.attach_metric(model, traced.metric)
        self._compute_loss_patch = internals.set_compute_loss(
            model, traced.recording_loss
        )
        if traced.function is None:
            # A new function that sees the recording `compute_loss`; traced
            # on its first call and kept for the next test.
            internals.retrace(model)
            traced.function = internals.train_function(model)
        internals.set_train_function(model, traced.function)
        self._traced_test = traced

    def _new_traced_test(self, key):
        model = self.model
        traced = traced_test.TracedTest(
            key,
            traced_test.capacity(self.num_steps),
            _backend.strategy_of(model),
        )
        traced.recording_loss = traced_test.recording_compute_loss(
            self._saved_compute_loss,
            internals.iterations_variable(model.optimizer),
            traced,
        )
        traced_test.keep_traced_test(model, traced)
        return traced

    def restore(self) -> None:
        """Puts the model and optimizer back as they were before the run.

        Variables bitwise, the optimizer's rate (the controller's curve is
        cleared), `compute_loss` and the train function. Safe to call more
        than once; does nothing when nothing is changed.
        """
        if not self._installed:
            return
        model = self.model
        self._installed = False
        snapshot.put(self._saved_variables, self._saved_values)
        snapshot.set_random_state(self._saved_random_state)
        self._saved_variables = self._saved_values = None
        self._saved_random_state = None
        self._controller.clear_curve()
        if self._traced_test.metric is not None:
            internals.detach_metric(model, self._traced_test.metric)
        if self._compute_loss_patch is not None:
            internals.restore_compute_loss(model, self._compute_loss_patch)
            self._compute_loss_patch = None
        internals.set_train_function(model, self._saved_train_function)

    def __enter__(self):
        self._in_block = True
        return self

    def __exit__(self, *exc_info):
        self._in_block = False
        self.restore()
        return False

    # Keras hooks ----------------------------------------------------------

    def on_train_begin(self, logs=None):
        if not self._resuming:
            self._reset_record()
        self._resuming = False
        # Still installed: the last run of a `with` block, or one whose
        # `fit` raised outside a block; this run starts from the state
        # before that one.
        self.restore()
        self._install()
        record = self._traced_test.buffer
        values = np.zeros(record.shape, dtype="float32")
        values[0, : len(self._losses)] = self._losses
        values[1, : len(self._losses)] = 1.0
        record.assign(values)

    def on_train_batch_end(self, batch, logs=None):
        self._read_record()

    def _read_record(self) -> None:
        """Records the losses written since the last read; stops on time."""
        if not self._traced_test.traced:
            raise RuntimeError(
                "LRRangeTest could not read the per-step loss: the model's "
                "`train_step` does not call `self.compute_loss` (or "
                "`self._compute_loss`). Call it there to use the range test."
            )
        internals.sync_train_state(self.model)
        record = traced_test.read_record(self._traced_test.buffer)
        # Steps past the sweep (`steps_per_execution` overrunning its end)
        # may write too: they are not part of the curve.
        written = min(int(np.count_nonzero(record[1] > 0)), self.num_steps)
        for loss in record[0, len(self._losses) : written]:
            if self._stop_reason is not None:
                break
            self._record(float(loss))
        done = len(self._losses) >= self.num_steps
        if self._stop_reason is not None or done:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        try:
            if self.verbose:
                print(self.summary())
            if self.warn:
                for message in self.result.warnings():
                    warnings.warn(message, stacklevel=2)
        finally:
            if not self._in_block:
                self.restore()

    def summary(self) -> str:
        """A one-line account of the last sweep."""
        steps = len(self._losses)
        reason = {
            None: "finished",
            "diverged": (
                f"stopped: smoothed loss above {self.diverge_threshold:g}x "
                "its best"
            ),
            "non_finite": "stopped: loss not finite",
        }[self._stop_reason]
        text = f"LRRangeTest: {steps}/{self.num_steps} steps, {reason}"
        try:
            lr = self.result.suggestion()
            text += f"; suggested learning rate (valley): {lr:.3g}"
        except ValueError:
            pass
        return text
