"""BackupAndRestore: weights, optimizer and callback state survive a crash."""

import base64
import json
import os

import keras
import numpy as np
import pytest

import keras_lr
from keras_lr.callbacks import BackupAndRestore
from keras_lr.callbacks._stateful import StatefulCallback

pytestmark = pytest.mark.portable

ON_TORCH = keras.backend.backend() == "torch"
# What only PyTorch changes runs there by default, `slow` elsewhere (the
# masks come from a seed-generator variable there, held like any other).
SLOW_OFF_TORCH = () if ON_TORCH else (pytest.mark.slow,)


class HalveEveryOtherEpoch(StatefulCallback):
    """Test-only stateful callback: halves the LR every second epoch."""

    def __init__(self):
        super().__init__()
        self.epochs_seen = 0
        self.log = []
        self._resuming = False

    def on_train_begin(self, logs=None):
        if not self._resuming:
            self.epochs_seen = 0
            self.log = []
        self._resuming = False

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_seen += 1
        if self.epochs_seen % 2 == 0:
            lr = self.model.optimizer.learning_rate
            lr.assign(lr * 0.5)
        rate = self.model.optimizer.learning_rate
        self.log.append(float(keras.ops.convert_to_numpy(rate)))

    def get_state(self):
        return {"epochs_seen": self.epochs_seen, "log": list(self.log)}

    def set_state(self, state):
        self.epochs_seen = state["epochs_seen"]
        self.log = list(state["log"])
        self._resuming = True


class CrashAt(keras.callbacks.Callback):
    def __init__(self, epoch, batch=None):
        super().__init__()
        self.epoch, self.batch = epoch, batch
        self.current = None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch
        if self.batch is None and epoch == self.epoch:
            raise KeyboardInterrupt("simulated crash")

    def on_train_batch_begin(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt("simulated crash")


def data():
    rng = np.random.default_rng(0)
    return (
        rng.normal(size=(32, 4)).astype("float32"),
        rng.normal(size=(32, 1)).astype("float32"),
    )


def model():
    keras.utils.set_random_seed(3)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    m.compile(keras.optimizers.Adam(0.1), "mse")
    return m


def run(backup_dir, epochs=6, crash=None, **backup_kwargs):
    x, y = data()
    m, toy = model(), HalveEveryOtherEpoch()
    callbacks = [toy, BackupAndRestore(backup_dir, **backup_kwargs)]
    if crash is not None:
        callbacks.append(crash)
    m.fit(
        x,
        y,
        batch_size=8,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )
    return m, toy


def test_resume_after_crash_matches_uninterrupted(tmp_path):
    reference, ref_toy = run(str(tmp_path / "a"))
    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "b"), crash=CrashAt(3))
    assert os.path.exists(tmp_path / "b" / "state.json")
    resumed, toy = run(str(tmp_path / "b"))
    assert toy.log == ref_toy.log
    assert toy.epochs_seen == 6
    assert int(resumed.optimizer.iterations.numpy()) == 24
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not os.path.exists(tmp_path / "b")  # deleted after success


def test_mid_epoch_backup_is_written_every_save_freq_batches(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "b"), crash=CrashAt(2, batch=3), save_freq=2)
    state = json.loads((tmp_path / "b" / "state.json").read_text())
    assert (state["epoch"], state["batch"]) == (2, 2)
    assert state["callbacks"]["HalveEveryOtherEpoch"]["epochs_seen"] == 2


def test_fresh_fit_after_success_starts_from_scratch(tmp_path):
    m, toy = run(str(tmp_path / "a"), epochs=2)
    assert toy.epochs_seen == 2
    m2, toy2 = run(str(tmp_path / "a"), epochs=2)
    assert toy2.epochs_seen == 2
    assert int(m2.optimizer.iterations.numpy()) == 8


def test_corrupt_state_file_is_named_in_the_error(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "b"), crash=CrashAt(2))
    path = tmp_path / "b" / "state.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=str(path)):
        run(str(tmp_path / "b"))


def test_corrupt_weights_are_detected(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "b"), crash=CrashAt(2))
    state = json.loads((tmp_path / "b" / "state.json").read_text())
    weights = tmp_path / "b" / state["variables_file"]
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match="does not match its recorded SHA-256"):
        run(str(tmp_path / "b"))


def test_double_checkpoint_falls_back_to_the_backup_before(tmp_path):
    """As Keras' `double_checkpoint`: the last backup corrupt, the one
    before it is restored (with a warning), and the run still ends as the
    uninterrupted one."""
    reference, ref_toy = run(str(tmp_path / "a"))
    folder = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        run(str(folder), crash=CrashAt(3), double_checkpoint=True)
    last = json.loads((folder / "state.json").read_text())
    before = json.loads((folder / "state.previous.json").read_text())
    assert (last["epoch"], before["epoch"]) == (3, 2)
    assert sorted(p.name for p in folder.glob("ckpt-*")) == sorted(
        [last["variables_file"], before["variables_file"]]
    )
    weights = folder / last["variables_file"]
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.warns(UserWarning, match="Restoring the backup before it"):
        resumed, toy = run(str(folder), double_checkpoint=True)
    assert toy.log == ref_toy.log
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not folder.exists()


def test_double_checkpoint_with_both_corrupt_is_an_error(tmp_path):
    folder = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        run(str(folder), crash=CrashAt(3), double_checkpoint=True)
    for name in ("state.json", "state.previous.json"):
        (folder / name).write_text("{not json")
    with pytest.raises(ValueError, match="state.json cannot be read"):
        run(str(folder), double_checkpoint=True)


def test_backup_of_another_model_is_an_error(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "b"), crash=CrashAt(2))
    x, y = data()
    wider = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    wider.compile(keras.optimizers.Adam(0.1), "mse")
    with pytest.raises(
        ValueError,
        match=r"ckpt-\d+\.npz, which does not fit this model: variable 0 "
        r"\(.*kernel\) is float32 \[4, 2\]; the file holds float32 \[4, 1\]",
    ):
        wider.fit(
            x,
            np.repeat(y, 2, axis=1),
            epochs=4,
            verbose=0,
            callbacks=[
                HalveEveryOtherEpoch(),
                BackupAndRestore(str(tmp_path / "b")),
            ],
        )


def test_restart_mode_warns_and_starts_fresh(tmp_path):
    os.makedirs(tmp_path / "b")
    (tmp_path / "b" / "state.json").write_text("[]")
    with pytest.warns(UserWarning, match="Training starts from scratch"):
        m, toy = run(str(tmp_path / "b"), epochs=2, on_invalid_state="restart")
    assert toy.epochs_seen == 2
    assert int(m.optimizer.iterations.numpy()) == 8


def test_state_for_a_missing_callback_is_an_error(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "b"), crash=CrashAt(2))
    x, y = data()
    with pytest.raises(ValueError, match=r"HalveEveryOtherEpoch"):
        model().fit(
            x,
            y,
            epochs=4,
            verbose=0,
            callbacks=[BackupAndRestore(str(tmp_path / "b"))],
        )


def test_kill_during_a_save_leaves_the_previous_backup(tmp_path, monkeypatch):
    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "b"), crash=CrashAt(2))
    before = (tmp_path / "b" / "state.json").read_text()

    def dying_save(file, *args, **arrays):
        file.write(b"partial")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(np, "savez", dying_save)
    with pytest.raises(KeyboardInterrupt, match="killed while saving"):
        run(str(tmp_path / "b"))
    monkeypatch.undo()
    assert (tmp_path / "b" / "state.json").read_text() == before
    reference, ref_toy = run(str(tmp_path / "a"))
    resumed, toy = run(str(tmp_path / "b"))
    assert toy.log == ref_toy.log
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_must_come_after_keras_lr_callbacks(tmp_path):
    x, y = data()
    with pytest.raises(ValueError, match="must come after.*HalveEveryOther"):
        model().fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[BackupAndRestore(str(tmp_path)), HalveEveryOtherEpoch()],
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backup_dir": ""}, "Argument `backup_dir` must be a non-empty path"),
        (
            {"backup_dir": "d", "save_freq": 0},
            "Argument `save_freq` must be .epoch. or a positive integer",
        ),
        (
            {"backup_dir": "d", "on_invalid_state": "ignore"},
            "Argument `on_invalid_state` must be one of",
        ),
        (
            {"backup_dir": "d", "double_checkpoint": 1},
            "Argument `double_checkpoint` must be",
        ),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        BackupAndRestore(**kwargs)


def _plateau_run(backup_dir, crash=None):
    from keras_lr.callbacks import ReduceLROnPlateau

    x, y = data()
    m = model()
    # min_delta larger than any change: epoch 0 stays the best, so every
    # second epoch cuts the rate and rolls back to epoch 0's snapshot.
    plateau = ReduceLROnPlateau(
        monitor="loss", factor=0.5, patience=2, min_delta=100.0, backtrack=True
    )
    callbacks = [plateau, BackupAndRestore(backup_dir)]
    if crash is not None:
        callbacks.append(crash)
    m.fit(
        x,
        y,
        batch_size=8,
        epochs=6,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )
    return m


def test_backtracking_snapshot_survives_a_crash(tmp_path):
    """The cut at epoch 4 rolls back to epoch 0's weights, which only the
    interrupted process had in memory: the backup must carry them."""
    reference = _plateau_run(str(tmp_path / "a"))
    with pytest.raises(KeyboardInterrupt):
        _plateau_run(str(tmp_path / "b"), crash=CrashAt(3))
    files = os.listdir(tmp_path / "b")
    assert any(name.startswith("arrays-") for name in files), files
    resumed = _plateau_run(str(tmp_path / "b"))
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    rate = keras.ops.convert_to_numpy(resumed.optimizer.learning_rate)
    assert float(rate) == pytest.approx(
        0.1 * 0.5**2  # cuts at epochs 2 and 4
    )


def _dropout_run(backup_dir, crash=None):
    """An unseeded `Dropout(0.5)` trained from a loader at a fixed batch
    size (whose position the backup carries), a backup every step: on
    PyTorch the masks come from torch's global generator."""
    x, y = data()
    loader = keras_lr.data.GrowingBatchLoader(x, y, batch_size=8, seed=1)
    keep = keras_lr.callbacks.BatchSizeScheduler(loader, lambda e, size: size)
    keras.utils.set_random_seed(3)
    m = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(1),
        ]
    )
    m.compile(keras.optimizers.Adam(0.05), "mse")
    callbacks = [keep, BackupAndRestore(backup_dir, save_freq=1)]
    if crash is not None:
        callbacks.append(crash)
    m.fit(loader, epochs=4, shuffle=False, verbose=0, callbacks=callbacks)
    return m


@pytest.mark.parametrize(
    "crash_at",
    [
        pytest.param((2, 1), marks=SLOW_OFF_TORCH, id="mid"),
        pytest.param((2, 0), marks=SLOW_OFF_TORCH, id="edge"),
    ],
)
def test_unseeded_dropout_resumes_with_the_same_masks(tmp_path, crash_at):
    """The process goes on after the crash, but the resumed `fit` seeds
    torch afresh (`set_random_seed`), as a new process would: only the
    backup can give back the generator the interrupted run had."""
    reference = _dropout_run(str(tmp_path / "a"))
    with pytest.raises(KeyboardInterrupt):
        _dropout_run(str(tmp_path / "b"), crash=CrashAt(*crash_at))
    resumed = _dropout_run(str(tmp_path / "b"))
    assert int(resumed.optimizer.iterations.numpy()) == 16
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


class GeneratorAtEpochEnd(keras.callbacks.Callback):
    """The bytes of torch's CPU generator state after each epoch's end
    (after the backup, which comes before it in the list)."""

    def __init__(self):
        super().__init__()
        self.states = []

    def on_epoch_end(self, epoch, logs=None):
        import torch

        self.states.append(torch.get_rng_state().numpy().tobytes())


def test_backup_holds_torchs_generator_only_on_torch(tmp_path):
    x, y = data()
    seen = GeneratorAtEpochEnd()
    extra = [seen] if ON_TORCH else []
    with pytest.raises(KeyboardInterrupt):
        model().fit(
            x,
            y,
            batch_size=8,
            epochs=4,
            verbose=0,
            callbacks=[
                HalveEveryOtherEpoch(),
                BackupAndRestore(str(tmp_path / "b")),
                *extra,
                CrashAt(2),
            ],
        )
    state = json.loads((tmp_path / "b" / "state.json").read_text())
    assert state["epoch"] == 2
    if not ON_TORCH:
        # The stream is a seed-generator variable there, in the .npz.
        assert "random_state" not in state
        return
    import torch

    assert len(state["random_state"]["cuda"]) == (
        torch.cuda.device_count() if torch.cuda.is_available() else 0
    )
    saved = base64.b64decode(state["random_state"]["cpu"])
    assert len(saved) == torch.get_rng_state().numel()
    assert saved == seen.states[1]
    assert saved != seen.states[0]


def test_backup_without_torchs_generator_resumes_with_a_note(tmp_path):
    """A backup written before keras_lr saved the generator (or on
    TensorFlow or JAX) still resumes; on PyTorch it says that unseeded
    layers draw other numbers."""
    reference, ref_toy = run(str(tmp_path / "a"))
    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "b"), crash=CrashAt(3))
    path = tmp_path / "b" / "state.json"
    state = json.loads(path.read_text())
    state.pop("random_state", None)
    path.write_text(json.dumps(state))
    if ON_TORCH:
        with pytest.warns(UserWarning, match="holds no state of torch's"):
            resumed, toy = run(str(tmp_path / "b"))
    else:
        resumed, toy = run(str(tmp_path / "b"))
    # No random layer here: the run still ends as the uninterrupted one.
    assert toy.log == ref_toy.log
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"cpu": "not base64!", "cuda": []}, "must be a dict of base64"),
        ({"cuda": []}, "must be a dict of base64"),
        (
            {"cpu": base64.b64encode(bytes(10)).decode(), "cuda": []},
            r"must be \d+ bytes \(this torch's\). Received: 10 bytes",
        ),
    ],
)
def test_unreadable_generator_state_is_named_in_the_error(
    tmp_path, entry, message
):
    if not ON_TORCH:
        pytest.skip("torch's generator is saved on PyTorch only")
    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "b"), crash=CrashAt(2))
    path = tmp_path / "b" / "state.json"
    state = json.loads(path.read_text())
    state["random_state"] = entry
    path.write_text(json.dumps(state))
    with pytest.raises(
        ValueError, match=f"{path} holds an unreadable random state: .*"
    ) as raised:
        run(str(tmp_path / "b"))
    assert raised.match(message)


def _shuffled_run(backup_dir, crash=None):
    """`fit` on NumPy arrays with `shuffle=True`: Keras' JAX `fit` draws
    each epoch's order from NumPy's global stream, PyTorch's from
    torch's generator. `model()` seeds both afresh, as a new process
    would."""
    x, y = data()
    m = model()
    callbacks = [BackupAndRestore(backup_dir)]
    if crash is not None:
        callbacks.append(crash)
    m.fit(
        x,
        y,
        batch_size=8,
        epochs=5,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    return m


def test_shuffled_arrays_resume_in_the_same_order(tmp_path):
    if keras.backend.backend() == "tensorflow":
        pytest.skip(
            "TensorFlow's `fit` shuffles inside tf.data, whose random "
            "state no callback can reach (documented in BackupAndRestore)"
        )
    reference = _shuffled_run(str(tmp_path / "a"))
    with pytest.raises(KeyboardInterrupt):
        _shuffled_run(str(tmp_path / "b"), crash=CrashAt(3))
    resumed = _shuffled_run(str(tmp_path / "b"))
    assert int(resumed.optimizer.iterations.numpy()) == 20
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_numpy_stream_goes_through_json_exactly():
    from keras_lr import snapshot

    # NumPy's legacy global stream, the one Keras draws from.
    np.random.seed(5)  # noqa: NPY002
    np.random.normal()  # noqa: NPY002 - leaves a cached Gaussian
    text = json.loads(json.dumps(snapshot.numpy_random_state_to_json()))
    expected = np.random.random(4)  # noqa: NPY002
    snapshot.set_numpy_random_state(
        snapshot.numpy_random_state_from_json(text)
    )
    np.testing.assert_array_equal(np.random.random(4), expected)  # noqa: NPY002
    with pytest.raises(ValueError, match="must be MT19937's 624 keys"):
        snapshot.numpy_random_state_from_json(
            {**text, "keys": base64.b64encode(bytes(8)).decode()}
        )
    with pytest.raises(ValueError, match="must be a dict with"):
        snapshot.numpy_random_state_from_json({"keys": "x"})
