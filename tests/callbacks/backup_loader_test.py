"""`BackupAndRestore` with mid-epoch backups and keras_lr's loader: a run
killed at any point, validation included, resumes to the uninterrupted
run's weights and steps."""

import keras
import numpy as np
import pytest

import keras_lr
from keras_lr.callbacks import BackupAndRestore

pytestmark = pytest.mark.portable

EPOCHS = 4


def sizes(epoch, size):
    # 32 samples: 8, 4, 2 and 2 batches.
    return 4 * 2 ** min(epoch, 2)


class Crash(keras.callbacks.Callback):
    """Raises at `(epoch, where)`: where is a batch index, or "validation"
    (the start of the epoch's validation, after its last step)."""

    def __init__(self, epoch, where):
        super().__init__()
        self.epoch, self.where, self.now = epoch, where, None

    def on_epoch_begin(self, epoch, logs=None):
        self.now = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.now, batch) == (self.epoch, self.where):
            raise KeyboardInterrupt("simulated crash")

    def on_test_begin(self, logs=None):
        if (self.now, "validation") == (self.epoch, self.where):
            raise KeyboardInterrupt("simulated crash")


def run(folder, crash=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(0.05), "mse")
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=4, seed=1)
    callbacks = [
        keras_lr.callbacks.BatchSizeScheduler(
            loader, sizes, max_batch_size=16
        ),
        BackupAndRestore(folder, save_freq=1),
    ]
    if crash is not None:
        callbacks.append(crash)
    history = model.fit(
        loader,
        epochs=EPOCHS,
        verbose=0,
        validation_data=(x[:8], y[:8]),
        shuffle=False,  # the loader shuffles; a resumed epoch needs its order
        callbacks=callbacks,
    )
    return model, history


@pytest.mark.parametrize("where", ["validation", 1, 0])
def test_a_kill_anywhere_in_an_epoch_resumes_exactly(tmp_path, where):
    reference, _ = run(str(tmp_path / "a"))
    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "b"), crash=Crash(2, where))
    resumed, history = run(str(tmp_path / "b"))
    steps = int(keras.ops.convert_to_numpy(resumed.optimizer.iterations))
    assert steps == 8 + 4 + 2 + 2
    for got, expected in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, expected)
