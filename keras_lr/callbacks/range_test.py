"""The learning-rate range test, as a callback inside `model.fit`."""

import math
import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_lr import _checks
from keras_lr import _lr_control
from keras_lr.finder.result import RangeTestResult

MODES = ("exponential", "linear")
MIN_STEPS = 10


def sweep_learning_rates(
    start_lr: float, end_lr: float, num_steps: int, mode: str = "exponential"
) -> np.ndarray:
    """The rate of each step of a sweep, in float64.

    ```python
    t = i / (num_steps - 1)                        # i = 0 .. num_steps - 1
    lr = start_lr * (end_lr / start_lr) ** t       # "exponential"
    lr = start_lr + (end_lr - start_lr) * t        # "linear"
    ```
    """
    t = np.arange(num_steps, dtype=np.float64) / (num_steps - 1)
    if mode == "exponential":
        return start_lr * (end_lr / start_lr) ** t
    return start_lr + (end_lr - start_lr) * t


def sweep(step, start_lr, end_lr, num_steps, mode, start_iteration):
    """In-graph `sweep_learning_rates`: the rate at optimizer step `step`.

    Computed in float64 and rounded once to float32, so every step gets the
    float32 nearest to the float64 formula. Steps past the sweep keep
    `end_lr` (only reachable when `steps_per_execution` overruns the end).
    """
    i = ops.cast(step, "float64") - float(start_iteration)
    t = ops.clip(i / float(num_steps - 1), 0.0, 1.0)
    if mode == "exponential":
        lr = start_lr * ops.power(float(end_lr) / float(start_lr), t)
    else:
        lr = start_lr + (float(end_lr) - float(start_lr)) * t
    return ops.cast(lr, "float32")


@keras.saving.register_keras_serializable(package="keras_lr")
class RangeSweep(keras.optimizers.schedules.LearningRateSchedule):
    """The schedule `LRRangeTest` installs for the duration of the test.

    Registered so that a model saved during the test still loads; it is
    replaced by the optimizer's own rate when the test ends. Once
    `allocate` has given it variables, the traced graph looks the rate up
    in a table (the float32 rounding of `sweep_learning_rates`, the same
    values `sweep` computes) at `step - start_iteration`, clipped to the
    table: two small ops a step, and the next test on the same model
    fills the table anew without tracing again.
    """

    def __init__(
        self, start_lr, end_lr, num_steps, mode="exponential", start_iteration=0
    ):
        super().__init__()
        self.start_lr = start_lr
        self.end_lr = end_lr
        self.num_steps = num_steps
        self.mode = mode
        self.start_iteration = start_iteration
        self._table = None
        self._start = None

    def allocate(self, capacity: int) -> None:
        """Creates the table (`capacity` steps) and first-step variables.

        Call it once, eagerly, under the model's distribution strategy
        scope, before tracing; `retarget` then fills them.
        """
        self._table = keras.Variable(
            np.zeros(capacity, dtype="float32"), trainable=False
        )
        self._start = keras.Variable(0, dtype="int64", trainable=False)

    @property
    def capacity(self) -> int:
        return int(self._table.shape[0])

    def retarget(self, start_lr, end_lr, num_steps, mode, start_iteration):
        """Points the sweep at a new range, length and first step, in place.

        Steps past the sweep (up to the table's end) keep `end_lr`.
        """
        self.start_lr = start_lr
        self.end_lr = end_lr
        self.num_steps = int(num_steps)
        self.mode = mode
        self.start_iteration = int(start_iteration)
        table = np.full(self.capacity, end_lr, dtype=np.float64)
        table[: self.num_steps] = sweep_learning_rates(
            start_lr, end_lr, self.num_steps, mode
        )
        self._table.assign(table.astype(np.float32))
        self._start.assign(self.start_iteration)

    def __call__(self, step):
        if self._table is None:
            return sweep(
                step,
                self.start_lr,
                self.end_lr,
                self.num_steps,
                self.mode,
                self.start_iteration,
            )
        last = self.capacity - 1
        index = ops.clip(ops.cast(step, "int64") - self._start, 0, last)
        return ops.take(self._table, index)

    def get_config(self):
        return {
            "start_lr": self.start_lr,
            "end_lr": self.end_lr,
            "num_steps": self.num_steps,
            "mode": self.mode,
            "start_iteration": self.start_iteration,
        }


class _TracedTest:
    """What a range test installs on a model, kept there for the next test.

    Tracing the train function costs more than the steps of a short sweep,
    so the sweep, the loss record, the recording `compute_loss` and the
    traced function stay with the model (on the instance, outside Keras'
    tracking) and are installed again by the next test, as long as nothing
    the graph captured has changed (`matches` compares each by identity)
    and the record is long enough. The record holds `sweep.capacity`
    steps, a power of two, so tests of different lengths share one trace.
    """

    def __init__(self, key, sweep, buffer):
        self.key = key
        self.sweep = sweep
        self.buffer = buffer
        self.compute_loss = None
        self.train_function = None
        self.traced = False

    @staticmethod
    def key_of(model, train_function, compute_loss):
        return (
            train_function,
            model.optimizer,
            getattr(compute_loss, "__func__", compute_loss),
            model.distribute_strategy,
            getattr(model, "steps_per_execution", 1),
            getattr(model, "jit_compile", None),
            tuple(model.trainable_variables),
        )

    def matches(self, key, num_steps) -> bool:
        # A record far longer than needed would cost time at every step.
        capacity = self.sweep.capacity
        fits = num_steps <= capacity <= 8 * _capacity(num_steps)
        return (
            fits
            and len(key) == len(self.key)
            and all(_same(a, b) for a, b in zip(key, self.key))
        )


def _capacity(num_steps: int) -> int:
    return max(128, 1 << (int(num_steps) - 1).bit_length())


def _same(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(x is y for x, y in zip(a, b))
    if a is None or isinstance(a, (bool, int, str)):
        return a == b
    return a is b


def _recording_compute_loss(compute_loss, optimizer, traced):
    """`compute_loss` that also writes each training step's loss.

    The column of the step is `optimizer.iterations` minus the sweep's
    first iteration, read from the sweep's variable.
    """
    buffer = traced.buffer
    capacity = traced.sweep.capacity
    start = traced.sweep._start

    def recording_compute_loss(*args, **kwargs):
        loss = compute_loss(*args, **kwargs)
        if kwargs.get("training", True):
            traced.traced = True
            index = ops.cast(optimizer.iterations, "int32") - ops.cast(
                start, "int32"
            )
            row = ops.one_hot(index, capacity, dtype="float32")
            value = ops.cast(ops.stop_gradient(loss), "float32")
            buffer.assign_add(ops.stack([row * value, row]))
        return loss

    return recording_compute_loss


def _read(variable) -> np.ndarray:
    """The value of the loss record, read once a step.

    Under a distribution strategy the replicas' shares are summed; on one
    device the bare read op skips `tf.Variable`'s Python layers, which
    cost more than the read itself and are paid at every step.
    """
    if isinstance(variable, tf.distribute.DistributedValues):
        return variable.numpy()
    return tf.raw_ops.ReadVariableOp(
        resource=variable.handle, dtype=variable.dtype
    ).numpy()


_CACHE_ATTRIBUTE = "_keras_lr_range_test"


def check_sweep_arguments(
    start_lr, end_lr, num_steps, mode, beta, diverge_threshold
) -> None:
    _checks.check_positive("start_lr", start_lr)
    _checks.check_positive("end_lr", end_lr)
    _checks.check_greater("end_lr", end_lr, "start_lr", start_lr)
    _checks.check_int("num_steps", num_steps)
    if num_steps < MIN_STEPS:
        raise ValueError(
            f"Argument `num_steps` must be >= {MIN_STEPS}: a shorter sweep "
            f"says nothing about the curve. Received: num_steps={num_steps!r}"
        )
    _checks.check_choice("mode", mode, MODES)
    _checks.check_real("beta", beta)
    if not 0 <= beta < 1:
        raise ValueError(
            f"Argument `beta` must be in [0, 1). Received: beta={beta!r}"
        )
    _checks.check_real("diverge_threshold", diverge_threshold)
    if not diverge_threshold > 1:
        raise ValueError(
            "Argument `diverge_threshold` must be > 1. "
            f"Received: diverge_threshold={diverge_threshold!r}"
        )


def check_compiled(model) -> None:
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
    variable (slots, `iterations`) are put back bitwise, and so is the
    optimizer's rate or schedule and the model's train function.

    ```python
    t = i / (num_steps - 1)                  # step i of the sweep
    lr = start_lr * (end_lr / start_lr) ** t
    stop if smoothed_loss[i] > diverge_threshold * min(smoothed_loss[:i + 1])
    ```

    How it stays exact and cheap: the sweep is a `LearningRateSchedule` of
    `optimizer.iterations`, so it changes every step even with
    `steps_per_execution > 1` or `jit_compile=True`; the per-step loss is
    written to a non-trainable variable by a thin wrapper around the
    model's `compute_loss` (the loss being optimized, summed over replicas
    under `tf.distribute`, i.e. the global-batch loss), set on the model
    instance for the test and removed after. With `steps_per_execution=N`
    the callback sees the losses once every N steps, so a divergence can
    only stop training at the end of that execution: the steps after the
    divergence point are then run but dropped from the record. The
    train function traced for the test stays with the model, so a second
    test on it does not trace again (unless the model was recompiled).

    A plain `fit` calls `on_train_end` only when it returns normally; to
    restore the model when `fit` raises (e.g. `KeyboardInterrupt`), use the
    callback as a context manager, call `restore()`, or use
    `keras_lr.find_learning_rate`, which does both for you.

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

    Example:

    ```python
    finder = keras_lr.callbacks.LRRangeTest(start_lr=1e-6, end_lr=1.0)
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
    ):
        super().__init__()
        check_sweep_arguments(
            start_lr, end_lr, num_steps, mode, beta, diverge_threshold
        )
        _checks.check_int("verbose", verbose)
        self.start_lr = start_lr
        self.end_lr = end_lr
        self.num_steps = num_steps
        self.mode = mode
        self.beta = beta
        self.diverge_threshold = diverge_threshold
        self.verbose = verbose
        # `find_learning_rate` restores between repeats itself and emits the
        # warnings once for all of them.
        self._managed = False
        self._installed = False
        self._resuming = False
        self._reset_record()

    # State of one sweep ---------------------------------------------------

    def _reset_record(self):
        self._losses = []
        self._average = 0.0
        self._best = math.inf
        self._stop_reason = None

    def _record(self, loss: float) -> None:
        i = len(self._losses)
        self._losses.append(loss)
        self._average = self.beta * self._average + (1.0 - self.beta) * loss
        smoothed = self._average / (1.0 - self.beta ** (i + 1))
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
        self._reset_record()
        for loss in state["losses"]:
            self._record(float(loss))
        self._stop_reason = state["stop_reason"]
        self._resuming = True

    @property
    def result(self) -> RangeTestResult:
        """The curve recorded so far, as a `keras_lr.RangeTestResult`."""
        return RangeTestResult.from_runs(
            [(self._learning_rates(), np.array(self._losses))],
            [self._stop_reason or "finished"],
            config=self._config(),
        )

    def _learning_rates(self) -> np.ndarray:
        lrs = sweep_learning_rates(
            self.start_lr, self.end_lr, self.num_steps, self.mode
        )
        return lrs[: len(self._losses)]

    def _config(self) -> dict:
        return {
            "start_lr": float(self.start_lr),
            "end_lr": float(self.end_lr),
            "num_steps": int(self.num_steps),
            "mode": self.mode,
            "beta": float(self.beta),
            "diverge_threshold": float(self.diverge_threshold),
        }

    # Installing and restoring ---------------------------------------------

    def _snapshot(self):
        model = self.model
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        self._saved_variables = [
            (v, np.array(v.numpy(), copy=True)) for v in model.variables
        ] + [(v, np.array(v.numpy(), copy=True)) for v in optimizer.variables]

    def _restore_variables(self):
        for variable, value in self._saved_variables:
            variable.assign(value)

    def _install(self):
        model = self.model
        check_compiled(model)
        self._snapshot()
        optimizer = _lr_control.base_optimizer(model.optimizer)
        start = int(optimizer.iterations.numpy()) - len(self._losses)
        self._saved_learning_rate = _lr_control.get_learning_rate_object(
            model.optimizer
        )
        self._saved_train_function = getattr(model, "train_function", None)
        self._had_own_compute_loss = "compute_loss" in vars(model)
        self._saved_compute_loss = model.compute_loss
        key = _TracedTest.key_of(
            model,
            self._saved_train_function,
            self._saved_compute_loss,
        )
        traced = vars(model).get(_CACHE_ATTRIBUTE)
        if traced is None or not traced.matches(key, self.num_steps):
            traced = self._new_traced_test(key, optimizer)
        with model.distribute_strategy.scope():
            traced.sweep.retarget(
                self.start_lr, self.end_lr, self.num_steps, self.mode, start
            )
        model.compute_loss = traced.compute_loss
        _lr_control.set_learning_rate_object(model, traced.sweep, rebuild=False)
        if traced.train_function is None:
            # A new function that sees both replacements; traced on its
            # first call and kept for the next test.
            model.make_train_function(force=True)
            traced.train_function = model.train_function
        model.train_function = traced.train_function
        self._traced_test = traced
        self._installed = True

    def _new_traced_test(self, key, optimizer):
        model = self.model
        sweep = RangeSweep(
            self.start_lr, self.end_lr, self.num_steps, self.mode
        )
        capacity = _capacity(self.num_steps)
        with model.distribute_strategy.scope():
            sweep.allocate(capacity)
            # Row 0: the loss of each step, row 1: 1 where a step wrote.
            # On-read sync: each replica adds its own share and reading
            # sums them, the way Keras' metric variables work.
            buffer = tf.Variable(
                np.zeros((2, capacity), dtype="float32"),
                trainable=False,
                aggregation=tf.VariableAggregation.SUM,
                synchronization=tf.VariableSynchronization.ON_READ,
                name="lr_range_test_record",
            )
        traced = _TracedTest(key, sweep, buffer)
        traced.compute_loss = _recording_compute_loss(
            self._saved_compute_loss, optimizer, traced
        )
        # Set past Keras' attribute tracking: the record is not a weight.
        object.__setattr__(model, _CACHE_ATTRIBUTE, traced)
        return traced

    def restore(self) -> None:
        """Puts the model and optimizer back as they were before the test.

        Safe to call more than once; does nothing when nothing is changed.
        """
        if not self._installed:
            return
        model = self.model
        self._restore_variables()
        if self._had_own_compute_loss:
            model.compute_loss = self._saved_compute_loss
        else:
            del model.compute_loss
        _lr_control.set_learning_rate_object(
            model, self._saved_learning_rate, rebuild=False
        )
        model.train_function = self._saved_train_function
        self._installed = False
        self._saved_variables = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.restore()
        return False

    # Keras hooks ----------------------------------------------------------

    def on_train_begin(self, logs=None):
        if not self._resuming:
            self._reset_record()
        self._resuming = False
        # Installed already: a repeat driven by `find_learning_rate`, which
        # restored the variables and keeps the same train function.
        if not self._installed:
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
        record = _read(self._traced_test.buffer)
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
        if self._managed:
            return
        try:
            if self.verbose:
                print(self.summary())
            for message in self.result.warnings():
                warnings.warn(message, stacklevel=2)
        finally:
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
