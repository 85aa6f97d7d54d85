"""One trial: the reproduction's digits MLP as a Ray Tune function.

`train_digits(config)` trains the MLP on the digits, fed by a
`keras_lr.data.GrowingBatchLoader` whose batch size follows
`config["batch_size"]` (so PBT can explore it too), with Adam at
`config["learning_rate"]` (constant, or the peak of a warmup + cosine
schedule), and reports every epoch with
`keras_lr.tune.ReportAndCheckpoint`. `trial_config` makes its config.
"""

import math
import os
import signal


def trial_config(
    learning_rate: float,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 32,
    schedule: str = "constant",
    plateau: bool = False,
    kill_at: list | None = None,
    marker_dir: str | None = None,
) -> dict:
    """A config of `train_digits`.

    Args:
        learning_rate: The rate (its peak with `"warmup_cosine"`).
        epochs: Epochs of the trial.
        seed: Seeds the weights and the loader's shuffling.
        batch_size: The loader's batch size (the one a warmup + cosine
            schedule is laid out for, whatever PBT makes of it later).
        schedule: `"constant"` or `"warmup_cosine"` (one epoch of linear
            warmup, then cosine decay to 0 at the last step).
        plateau: Adds `keras_lr.callbacks.ReduceLROnPlateau` on
            `val_loss` (factor 0.5, patience 1), whose counters the
            checkpoints carry.
        kill_at: `[epoch, batch]` (0-based): the first trial to get there
            kills its own process with SIGKILL, once (a fault test).
        marker_dir: The folder where that trial leaves its mark.
    """
    return {
        "learning_rate": float(learning_rate),
        "batch_size": int(batch_size),
        # Not mutated: the schedule's length in steps stays the same when
        # PBT explores the batch size (see `train_digits`).
        "schedule_batch_size": int(batch_size),
        "epochs": int(epochs),
        "seed": int(seed),
        "schedule": schedule,
        "plateau": bool(plateau),
        "kill_at": kill_at,
        "marker_dir": marker_dir,
    }


def _killer(config: dict):
    import keras

    epoch_at, batch_at = config["kill_at"]
    marker = os.path.join(config["marker_dir"], "killed")

    class KillOnce(keras.callbacks.Callback):
        """SIGKILLs this trial's process at (epoch, batch), once in all."""

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self._epoch, batch) != (epoch_at, batch_at):
                return
            try:
                handle = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(handle, str(os.getpid()).encode())
            os.close(handle)
            os.kill(os.getpid(), signal.SIGKILL)

    return KillOnce()


def train_digits(config: dict) -> None:
    """Ray Tune function: the digits MLP, reported every epoch."""
    import keras

    import keras_lr
    import keras_lr.tune
    from keras_lr_experiments import datasets
    from keras_lr_experiments import models

    # An actor Ray reuses keeps the previous trial's graphs.
    keras.backend.clear_session()
    data = datasets.load_dataset("digits")
    keras.utils.set_random_seed(config["seed"])
    model = models.build_model(data.kind, data.input_shape, data.num_classes)
    loader = keras_lr.data.GrowingBatchLoader(
        data.x_train,
        data.y_train,
        batch_size=int(config["batch_size"]),
        seed=config["seed"],
    )
    rate = float(config["learning_rate"])
    if config["schedule"] == "warmup_cosine":
        # In steps of the starting batch size, the same in every trial, so
        # that a trial exploiting another with a new batch size keeps the
        # donor's schedule (it counts optimizer steps: at twice the batch,
        # an epoch moves it half as far).
        per_epoch = math.ceil(
            len(data.y_train) / int(config["schedule_batch_size"])
        )
        rate = keras_lr.schedules.CosineDecay(
            0.0,
            decay_steps=per_epoch * (config["epochs"] - 1),
            warmup_target=rate,
            warmup_steps=per_epoch,
        )
    models.compile_model(model, keras.optimizers.Adam(learning_rate=rate))
    callbacks = [
        # The batch size of each epoch is the config's: an exploit that
        # explores it takes effect at the next epoch.
        keras_lr.callbacks.BatchSizeScheduler(
            loader,
            lambda epoch, size: int(config["batch_size"]),
            max_batch_size=None,
        ),
    ]
    if config["plateau"]:
        callbacks.append(
            keras_lr.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=1
            )
        )
    if config.get("kill_at"):
        callbacks.append(_killer(config))
    callbacks.append(keras_lr.tune.ReportAndCheckpoint(config))
    model.fit(
        loader.as_dataset(),
        steps_per_epoch=loader.steps_per_epoch,
        epochs=config["epochs"],
        shuffle=False,
        validation_data=(data.x_val, data.y_val),
        verbose=0,
        callbacks=callbacks,
    )
