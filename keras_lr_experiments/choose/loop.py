"""A compiled training loop: a run's steps, a chunk at a time, fast.

Part `choose` trains several thousand short runs; `model.fit` would spend
more time setting itself up than training them. `Trainer` builds a
workload's model and optimizer once, traces one TensorFlow function that
trains a chunk of steps (each at its own rate from an array, so any
schedule is the array of its values), and resets weights and optimizer
state between runs, so a run costs its steps and little else.

Every step is counted by measurement: `Trainer.steps` is the optimizer's
own `iterations` counter, read after each chunk.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_lr.callbacks import SwapScheduleFreeWeights

OPTIMIZERS = ("adamw", "adam", "schedule_free_adamw")
BATCH_SIZE = 32


def make_optimizer(name: str, learning_rate: float):
    """AdamW, Adam or ScheduleFreeAdamW, Keras defaults but the rate."""
    classes = {
        "adamw": keras.optimizers.AdamW,
        "adam": keras.optimizers.Adam,
        "schedule_free_adamw": keras.optimizers.ScheduleFreeAdamW,
    }
    return classes[name](learning_rate=float(learning_rate))


def initial_weights(workload, seed: int) -> list[np.ndarray]:
    """The model's starting weights for `seed` (the same in every way)."""
    keras.utils.set_random_seed(seed)
    inputs, outputs = workload.build_model()
    return [np.array(w) for w in keras.Model(inputs, outputs).get_weights()]


def batch_indices(num_examples: int, steps: int, seed: int) -> np.ndarray:
    """`[steps, BATCH_SIZE]` rows: shuffled passes end to end, full
    batches only, the same for every way of a seed."""
    rng = np.random.default_rng(seed)
    passes = -(-steps * BATCH_SIZE // num_examples) + 1
    order = np.concatenate(
        [rng.permutation(num_examples) for _ in range(passes)]
    )
    return (
        order[: steps * BATCH_SIZE].reshape(steps, BATCH_SIZE).astype("int32")
    )


class Trainer:
    """One workload's model and optimizer, with a traced chunk of steps.

    Args:
        workload: A `workloads.Workload`.
        optimizer: One of `OPTIMIZERS`.
    """

    def __init__(self, workload, optimizer: str = "adamw"):
        self.workload = workload
        self.optimizer_name = optimizer
        inputs, outputs = workload.build_model()
        self.model = keras.Model(inputs, outputs)
        self.optimizer = make_optimizer(optimizer, 1e-3)
        self.model.compile(optimizer=self.optimizer, loss=workload.loss)
        self.loss_fn = keras.losses.get(workload.loss)
        self.x = tf.constant(workload.x_train)
        self.y = tf.constant(workload.y_train)
        self.swap = None
        if optimizer == "schedule_free_adamw":
            self.swap = SwapScheduleFreeWeights()
            self.swap.set_model(self.model)
        self._chunk = tf.function(self._train_chunk, reduce_retracing=True)
        self._evaluate = tf.function(self._evaluate_arrays)

    def reset(self, weights: list[np.ndarray]) -> None:
        """Starting weights and a fresh optimizer state (step 0)."""
        self.model.set_weights(weights)
        if not self.optimizer.built:
            self.optimizer.build(self.model.trainable_variables)
            self._initial = [np.array(v) for v in self.optimizer.variables]
        if self.swap is not None:
            self._start_schedule_free()
            return
        for variable, value in zip(self.optimizer.variables, self._initial):
            variable.assign(value)

    def _start_schedule_free(self) -> None:
        # A fresh optimizer, built eagerly: its `z` starts at the weights
        # (built inside a traced step it would start at 0).
        self.optimizer = make_optimizer(self.optimizer_name, 1e-3)
        self.model.compile(optimizer=self.optimizer, loss=self.workload.loss)
        self.optimizer.build(self.model.trainable_variables)
        self._chunk = tf.function(self._train_chunk, reduce_retracing=True)

    def get_state(self) -> dict:
        """Weights and optimizer variables, as NumPy arrays."""
        return {
            "weights": [np.array(w) for w in self.model.get_weights()],
            "optimizer": [np.array(v) for v in self.optimizer.variables],
        }

    def set_state(self, state: dict) -> None:
        self.model.set_weights(state["weights"])
        if not self.optimizer.built:
            self.optimizer.build(self.model.trainable_variables)
        for variable, value in zip(
            self.optimizer.variables, state["optimizer"]
        ):
            variable.assign(value)

    @property
    def steps(self) -> int:
        """The optimizer's step counter (measured, not planned)."""
        return int(self.optimizer.iterations.numpy())

    def _train_chunk(self, indices, rates):
        model = self.model
        for i in tf.range(tf.shape(indices)[0]):
            self.optimizer.learning_rate = rates[i]
            rows = indices[i]
            x = tf.gather(self.x, rows)
            y = tf.gather(self.y, rows)
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(self.loss_fn(y, model(x, training=True)))
            grads = tape.gradient(loss, model.trainable_variables)
            self.optimizer.apply(grads, model.trainable_variables)
        return loss

    def train(self, indices: np.ndarray, rates: np.ndarray) -> float:
        """Trains `len(indices)` steps, step `i` at `rates[i]`; returns the
        last batch's loss."""
        loss = self._chunk(
            tf.constant(indices, tf.int32),
            tf.constant(np.asarray(rates, "float32")),
        )
        return float(loss)

    def _evaluate_arrays(self, x, y):
        predictions = self.model(x, training=False)
        loss = tf.reduce_mean(self.loss_fn(y, predictions))
        if self.workload.task == "classification":
            label = tf.cast(tf.argmax(predictions, axis=-1), y.dtype)
            metric = tf.reduce_mean(tf.cast(tf.equal(label, y), tf.float32))
        else:
            squared = tf.square(tf.squeeze(predictions, -1) - y)
            metric = tf.sqrt(tf.reduce_mean(squared))
        return loss, metric

    def evaluate(self) -> dict:
        """Validation and test loss and metric (at the averaged point for
        schedule-free AdamW). The RMSE is in the target's units."""
        if self.swap is not None:
            self.swap.to_averaged()
        try:
            out = {}
            w = self.workload
            for split, x, y in (
                ("val", w.x_val, w.y_val),
                ("test", w.x_test, w.y_test),
            ):
                loss, metric = self._evaluate(tf.constant(x), tf.constant(y))
                metric = float(metric)
                if w.task == "regression":
                    metric *= w.target_scale
                out[f"{split}_loss"] = float(loss)
                out[f"{split}_{w.metric}"] = metric
            return out
        finally:
            if self.swap is not None:
                self.swap.to_training()
