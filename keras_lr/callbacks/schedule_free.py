"""Evaluate, checkpoint and finish a schedule-free run at the averaged point."""

import keras
import numpy as np
from keras import ops

from keras_lr import _checks
from keras_lr import _keras_internals as internals
from keras_lr._model_state import record
from keras_lr.callbacks._stateful import StatefulCallback


def _keras_schedule_free():
    return getattr(keras.optimizers, "ScheduleFreeAdamW", None)


def averaged_from_training(y, z, beta_1):
    """`x = (y - (1 - beta_1) z) / beta_1`, as `ScheduleFreeAdamW` computes
    it in its update."""
    beta_1 = ops.cast(beta_1, y.dtype)
    return ops.divide(ops.subtract(y, ops.multiply(1 - beta_1, z)), beta_1)


def training_from_averaged(x, z, beta_1):
    """`y = (1 - beta_1) z + beta_1 x`, as `ScheduleFreeAdamW` computes it
    in its update."""
    beta_1 = ops.cast(beta_1, x.dtype)
    return ops.add(ops.multiply(1 - beta_1, z), ops.multiply(beta_1, x))


class SwapScheduleFreeWeights(StatefulCallback):
    """Puts the averaged weights of a schedule-free optimizer in the model
    for validation, checkpoints and the end of training.

    `keras.optimizers.ScheduleFreeAdamW` trains the model at the
    interpolated point `y`; the point meant for evaluation is the average
    `x`, which it keeps only implicitly (`z` is its "momentum" slot):

    ```python
    x = (y - (1 - beta_1) * z) / beta_1
    y = (1 - beta_1) * z + beta_1 * x
    ```

    `fit` never switches to `x`: validation metrics, checkpoints and the
    model left by `fit` are those of `y`. With this callback the model
    holds `x` from the start of validation (`on_test_begin`) through
    `on_epoch_end` (so epoch-end checkpoints hold `x`) and after `fit`;
    it goes back to `y` at the next `on_epoch_begin`. Like Keras'
    `SwapEMAWeights` it converts in place (no copy of the weights), with
    the same expressions as the optimizer: the round trip `y -> x -> y`
    is exact up to a few float32 ulps, and a run resumed by
    `keras_lr.callbacks.BackupAndRestore` from an epoch-end backup (which
    holds `x` and `z`) recomputes exactly the `y` of the uninterrupted run.

    Any optimizer with `swap_to_eval()` and `swap_to_train()` methods
    (the schedule-free API) is used through them instead; they must
    convert whenever called.

    Order in `callbacks`: put this callback before every callback that
    reads or saves the weights at epoch end (`keras.callbacks.ModelCheckpoint`,
    `EarlyStopping(restore_best_weights=True)`, keras_lr's `BackupAndRestore`,
    which says so if it is not). Checkpoints saved mid-epoch
    (`save_freq=<int>`) hold `y`; `BackupAndRestore` records which point
    each backup holds and resumes from either.

    BatchNorm: moving statistics collected while training are those of
    `y`. With `recalibrate_batchnorm=True`, each time the model moves to
    `x` the moving mean and variance of every trainable
    `BatchNormalization` layer are reset and set to the average, over the
    batches of `calibration_data`, of the batch statistics at `x` (the
    model is called in training mode, eagerly, without computing
    gradients, so no weight changes; layers such as `Dropout` are active
    as in training). Training then goes on from these statistics (they
    only serve inference).

    Args:
        recalibrate_batchnorm: A bool. Recompute BatchNorm moving
            statistics at `x` before it is used.
        calibration_data: Batches of inputs for the recalibration: a
            `tf.data.Dataset`, a `keras.utils.PyDataset` or a list; each
            element is `x` or a tuple `(x, ...)`. Required with
            `recalibrate_batchnorm=True`, refused otherwise.
        calibration_steps: A Python int > 0 or `None`. Batches used for
            each recalibration; `None` uses all of `calibration_data`.

    Example:

    ```python
    model.compile(keras.optimizers.ScheduleFreeAdamW(1e-3), "mse")
    model.fit(
        x, y, validation_data=(x_val, y_val), epochs=10,
        callbacks=[
            keras_lr.callbacks.SwapScheduleFreeWeights(),
            keras.callbacks.ModelCheckpoint("best.keras"),
            keras_lr.callbacks.BackupAndRestore("backup"),
        ],
    )
    model.evaluate(x_val, y_val)  # at x
    ```

    Reference:
        [Defazio et al., 2024](https://arxiv.org/abs/2405.15682)
    """

    def __init__(
        self,
        recalibrate_batchnorm=False,
        calibration_data=None,
        calibration_steps=None,
    ):
        super().__init__()
        _checks.check_bool("recalibrate_batchnorm", recalibrate_batchnorm)
        if recalibrate_batchnorm and calibration_data is None:
            raise ValueError(
                "Argument `calibration_data` is required with "
                "recalibrate_batchnorm=True. Received: calibration_data=None"
            )
        if not recalibrate_batchnorm and calibration_data is not None:
            raise ValueError(
                "Argument `calibration_data` is only used with "
                "recalibrate_batchnorm=True. Received: "
                "recalibrate_batchnorm=False and a calibration_data"
            )
        if isinstance(
            calibration_data, (np.ndarray, tuple, dict)
        ) or keras.ops.is_tensor(calibration_data):
            raise TypeError(
                "Argument `calibration_data` must be batches (a "
                "tf.data.Dataset, a keras.utils.PyDataset or a list of "
                "arrays), e.g. tf.data.Dataset.from_tensor_slices(x)"
                ".batch(32). Received: calibration_data of type "
                f"{type(calibration_data).__name__}"
            )
        if calibration_steps is not None:
            _checks.check_positive_int("calibration_steps", calibration_steps)
        self.recalibrate_batchnorm = recalibrate_batchnorm
        self.calibration_data = calibration_data
        self.calibration_steps = calibration_steps

    # Which point the model holds -------------------------------------------

    @property
    def holds_averaged(self) -> bool:
        """Whether the model's weights are the averaged point `x`."""
        if self.model is None:
            return False
        return record(self.model).holds_averaged

    def _set_holds(self, value: bool) -> None:
        record(self.model).holds_averaged = value

    def get_state(self) -> dict:
        return {"holds_averaged": self.holds_averaged}

    def set_state(self, state: dict) -> None:
        # Comes with the weights of a backup: they hold that point.
        self._set_holds(bool(state["holds_averaged"]))

    # Conversions -----------------------------------------------------------

    def _optimizer(self):
        optimizer = internals.base_optimizer(self.model.optimizer)
        if callable(getattr(optimizer, "swap_to_eval", None)) and callable(
            getattr(optimizer, "swap_to_train", None)
        ):
            return optimizer
        keras_class = _keras_schedule_free()
        if keras_class is not None and isinstance(optimizer, keras_class):
            return optimizer
        raise ValueError(
            "SwapScheduleFreeWeights needs keras.optimizers."
            "ScheduleFreeAdamW or an optimizer with `swap_to_eval()` and "
            "`swap_to_train()` methods. Received: optimizer="
            f"{type(optimizer).__name__}"
        )

    def _convert(self, to_averaged: bool) -> bool:
        """Moves the weights to the other point; False when there is no
        other point yet (optimizer not built: `x = y = z`)."""
        optimizer = self._optimizer()
        if hasattr(optimizer, "swap_to_eval"):
            if to_averaged:
                optimizer.swap_to_eval()
            else:
                optimizer.swap_to_train()
            return True
        if not optimizer.built:
            return False
        beta_1 = optimizer.beta_1
        beta_1 = beta_1() if callable(beta_1) else beta_1
        convert = (
            averaged_from_training if to_averaged else training_from_averaged
        )
        for variable in self.model.trainable_variables:
            z = internals.schedule_free_slot(optimizer, variable)
            if z is not None:
                variable.assign(convert(variable.value, z.value, beta_1))
        return True

    def to_averaged(self) -> None:
        """Puts `x` in the model (and recalibrates BatchNorm), if not there."""
        if self.holds_averaged:
            return
        if self._convert(to_averaged=True):
            self._set_holds(True)
        if self.recalibrate_batchnorm:
            self._recalibrate()

    def to_training(self) -> None:
        """Puts the training point `y` back in the model, if not there."""
        if self.holds_averaged and self._convert(to_averaged=False):
            self._set_holds(False)

    # BatchNorm -------------------------------------------------------------

    def _batchnorm_layers(self) -> list:
        layers = [
            layer
            for layer in internals.all_layers(self.model)
            if isinstance(layer, keras.layers.BatchNormalization)
            and layer.trainable
        ]
        if not layers:
            raise ValueError(
                "SwapScheduleFreeWeights was given recalibrate_batchnorm="
                "True, but the model has no trainable BatchNormalization "
                "layer."
            )
        renorm = [layer.name for layer in layers if layer.renorm]
        if renorm:
            raise ValueError(
                "SwapScheduleFreeWeights cannot recalibrate BatchNormalization "
                f"layers with renorm=True. Received: {renorm}"
            )
        return layers

    def _calibration_batches(self):
        data = self.calibration_data
        if isinstance(data, keras.utils.PyDataset):
            sequence = data
            data = (sequence[i] for i in range(len(sequence)))
        for step, batch in enumerate(data):
            if self.calibration_steps is not None and (
                step >= self.calibration_steps
            ):
                return
            yield batch[0] if isinstance(batch, (tuple, list)) else batch

    def _recalibrate(self) -> None:
        layers = self._batchnorm_layers()
        momenta = [layer.momentum for layer in layers]
        seen = 0
        try:
            for batch in self._calibration_batches():
                # Momentum k / (k + 1) at batch k: the moving statistics
                # are the plain average of the batch statistics so far
                # (batch 0 overwrites what the model held).
                for layer in layers:
                    layer.momentum = seen / (seen + 1)
                self.model(batch, training=True)
                seen += 1
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum
        if seen == 0:
            raise ValueError(
                "Argument `calibration_data` of SwapScheduleFreeWeights "
                "yielded no batch; BatchNorm statistics cannot be "
                "recalibrated."
            )

    # Hooks -----------------------------------------------------------------

    def on_train_begin(self, logs=None):
        optimizer = self._optimizer()
        if not hasattr(optimizer, "swap_to_eval") and not optimizer.built:
            # Built inside the traced train step (what `fit` does on
            # TensorFlow), ScheduleFreeAdamW starts `z` at 0 instead of
            # the initial weights, and its first step (averaging weight
            # 1) then discards them. Built here, eagerly, `z = y = x`.
            self.model.optimizer.build(self.model.trainable_variables)
        if self.recalibrate_batchnorm:
            self._batchnorm_layers()

    def on_epoch_begin(self, epoch, logs=None):
        # Not in `on_train_begin`: a backup's weights may be loaded there,
        # after this callback's turn.
        self.to_training()

    def on_test_begin(self, logs=None):
        # Stays at `x` after validation: `on_epoch_end` comes next.
        self.to_averaged()

    def on_predict_begin(self, logs=None):
        self.to_averaged()

    def on_epoch_end(self, epoch, logs=None):
        self.to_averaged()

    def on_train_end(self, logs=None):
        self.to_averaged()
        super().on_train_end(logs)
