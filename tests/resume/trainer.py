"""A training run that can kill itself with SIGKILL; used by resume_test.

python trainer.py SCENARIO BACKUP_DIR LOG_PATH WEIGHTS_PATH [EPOCH BATCH]

Logs one JSON line per optimizer step (step, learning rate, momentum,
batch size) and, at the end, saves the final weights. With EPOCH and BATCH
it sends itself SIGKILL at the start of that batch: no cleanup, no flush
of anything but what was already written.
"""

import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lr  # noqa: E402

EPOCHS = 8


class StepLog(keras.callbacks.Callback):
    def __init__(self, path, loader=None, kill_at=None):
        super().__init__()
        self.file = open(path, "a")  # noqa: SIM115 - kept open for the run
        self.loader = loader
        self.kill_at = kill_at
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.kill_at == (self.epoch, batch):
            os.kill(os.getpid(), signal.SIGKILL)
        optimizer = self.model.optimizer
        row = {
            "step": int(optimizer.iterations.numpy()),
            "lr": float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
        }
        for name in ("momentum", "beta_1"):
            value = getattr(optimizer, name, None)
            if value is not None:
                row[name] = float(keras.ops.convert_to_tensor(value))
        if self.loader is not None:
            row["batch_size"] = self.loader.batch_size
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1))).astype("float32")
    return x, y


def model(optimizer, dropout=0.0):
    """With `dropout` > 0, an unseeded `Dropout` after the hidden layer
    (on PyTorch it draws from torch's global generator)."""
    keras.utils.set_random_seed(0)
    layers = [keras.Input((6,)), keras.layers.Dense(8, activation="tanh")]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    m = keras.Sequential([*layers, keras.layers.Dense(1)])
    m.compile(optimizer, "mse")
    return m


def scenario_batch_growth(backup_dir, log, kill_at):
    x, y = data()
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=8, seed=1)
    m = model(keras.optimizers.SGD(0.05))
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader,
        keras_lr.callbacks.grow_batch_at([2, 4, 6], 2.0),
        max_batch_size=32,
    )
    callbacks = [
        grow,
        StepLog(log, loader, kill_at),
        keras_lr.callbacks.BackupAndRestore(backup_dir, save_freq=1),
    ]
    m.fit(loader, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
    return m


def _driven_loader(x, y):
    """A loader at a fixed batch size whose position BackupAndRestore saves
    (through the batch-size callback), for exact mid-epoch resume."""
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=8, seed=1)
    keep = keras_lr.callbacks.BatchSizeScheduler(loader, lambda e, size: size)
    return loader, keep


def scenario_warmup_cosine_plateau(backup_dir, log, kill_at):
    x, y = data()
    loader, keep = _driven_loader(x, y)
    schedule = keras_lr.schedules.LinearWarmup(
        keras_lr.schedules.CosineDecay(0.05, 100, alpha=0.1), 20
    )
    m = model(keras.optimizers.SGD(schedule, momentum=0.5))
    # min_delta larger than any loss change: every epoch after the first
    # is a bad one, so the rate is cut at epochs 2, 4 and 6.
    plateau = keras_lr.callbacks.ReduceLROnPlateau(
        monitor="loss", factor=0.5, patience=2, min_delta=100.0
    )
    callbacks = [
        keep,
        plateau,
        StepLog(log, loader, kill_at),
        keras_lr.callbacks.BackupAndRestore(backup_dir, save_freq=1),
    ]
    m.fit(loader, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
    return m


def scenario_one_cycle_momentum(backup_dir, log, kill_at):
    x, y = data()
    loader, keep = _driven_loader(x, y)
    m = model(keras.optimizers.SGD(0.01, momentum=0.9))
    one_cycle = keras_lr.callbacks.OneCycleLR(0.1, total_steps=EPOCHS * 15)
    callbacks = [
        keep,
        one_cycle,
        StepLog(log, loader, kill_at),
        keras_lr.callbacks.BackupAndRestore(backup_dir, save_freq=1),
    ]
    m.fit(loader, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
    return m


def scenario_exponential_decay_hybrid(backup_dir, log, kill_at):
    """Keras' ExponentialDecay; the batch grows past its cap from epoch 3
    on, so growth turns into LR decay (the rate controller's factor);
    backups at epoch ends only."""
    x, y = data()
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=8, seed=1)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, 30, 0.7)
    m = model(keras.optimizers.SGD(schedule))
    grow = keras_lr.callbacks.BatchSizeScheduler(
        loader,
        keras_lr.callbacks.grow_batch_at([1, 2, 3, 5], 2.0),
        max_batch_size=32,
    )
    callbacks = [
        grow,
        StepLog(log, loader, kill_at),
        keras_lr.callbacks.BackupAndRestore(backup_dir, save_freq="epoch"),
    ]
    m.fit(loader, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
    return m


def scenario_cyclic_plateau_adam(
    backup_dir, log, kill_at, dropout=0.0, validation=False
):
    """CyclicLR (cycling Adam's beta_1) with plateau cuts on top."""
    x, y = data()
    loader, keep = _driven_loader(x, y)
    m = model(keras.optimizers.Adam(0.01), dropout)
    cyclic = keras_lr.callbacks.CyclicLR(0.001, 0.02, step_size=10)
    plateau = keras_lr.callbacks.ReduceLROnPlateau(
        monitor="loss", factor=0.5, patience=2, min_delta=100.0
    )
    callbacks = [
        keep,
        cyclic,
        plateau,
        StepLog(log, loader, kill_at),
        keras_lr.callbacks.BackupAndRestore(backup_dir, save_freq=1),
    ]
    m.fit(
        loader,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        validation_data=(x[:24], y[:24]) if validation else None,
        callbacks=callbacks,
    )
    return m


def scenario_dropout_cyclic_plateau_adam(backup_dir, log, kill_at):
    """The cyclic-plateau run with an unseeded `Dropout(0.5)` and a
    validation set. On PyTorch the masks come from torch's global
    generator, from which `fit` also draws for each data iterator it
    makes (the epoch's and validation's)."""
    return scenario_cyclic_plateau_adam(
        backup_dir, log, kill_at, dropout=0.5, validation=True
    )


def scenario_one_cycle_logger(backup_dir, log, kill_at):
    """One-cycle with momentum and the per-step logger."""
    x, y = data()
    loader, keep = _driven_loader(x, y)
    m = model(keras.optimizers.SGD(0.01, momentum=0.9))
    one_cycle = keras_lr.callbacks.OneCycleLR(0.1, total_steps=EPOCHS * 15)
    callbacks = [
        keep,
        one_cycle,
        keras_lr.callbacks.LearningRateLogger(),
        StepLog(log, loader, kill_at),
        keras_lr.callbacks.BackupAndRestore(backup_dir, save_freq=1),
    ]
    m.fit(loader, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
    return m


def scenario_anytime_cooldown(backup_dir, log, kill_at):
    """A constant rate whose cooldown starts at epoch 3 and runs 40 steps
    (into epoch 5); training stops when it is over."""
    from keras_lr.callbacks.anytime_cooldown import AnytimeCooldown

    x, y = data()
    loader, keep = _driven_loader(x, y)
    m = model(keras.optimizers.SGD(0.05, momentum=0.5))
    cooldown = AnytimeCooldown(
        decay_steps=40, start_epoch=3, final_learning_rate=0.001
    )
    callbacks = [
        keep,
        cooldown,
        StepLog(log, loader, kill_at),
        keras_lr.callbacks.BackupAndRestore(backup_dir, save_freq=1),
    ]
    m.fit(loader, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
    return m


def scenario_schedule_free(backup_dir, log, kill_at):
    """ScheduleFreeAdamW with its averaged weights swapped in for
    validation and for every (epoch-end) backup, which then holds x."""
    from keras_lr.callbacks.schedule_free import SwapScheduleFreeWeights

    x, y = data()
    m = model(keras.optimizers.ScheduleFreeAdamW(0.01))
    callbacks = [
        SwapScheduleFreeWeights(),
        StepLog(log, None, kill_at),
        keras_lr.callbacks.BackupAndRestore(backup_dir, save_freq="epoch"),
    ]
    m.fit(
        x,
        y,
        batch_size=8,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        validation_data=(x[:24], y[:24]),
        callbacks=callbacks,
    )
    return m


SCENARIOS = {
    "exponential_decay_hybrid": scenario_exponential_decay_hybrid,
    "cyclic_plateau_adam": scenario_cyclic_plateau_adam,
    "dropout_cyclic_plateau_adam": scenario_dropout_cyclic_plateau_adam,
    "one_cycle_logger": scenario_one_cycle_logger,
    "batch_growth": scenario_batch_growth,
    "warmup_cosine_plateau": scenario_warmup_cosine_plateau,
    "one_cycle_momentum": scenario_one_cycle_momentum,
    "anytime_cooldown": scenario_anytime_cooldown,
    "schedule_free": scenario_schedule_free,
}

if __name__ == "__main__":
    name, backup_dir, log, weights = sys.argv[1:5]
    kill_at = tuple(int(v) for v in sys.argv[5:7]) or None
    trained = SCENARIOS[name](backup_dir, log, kill_at)
    np.savez(weights, *trained.get_weights())
