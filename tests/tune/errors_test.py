"""Bad input to keras_lr.tune, and Ray as an optional dependency."""

import importlib
import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_lr
import keras_lr.tune

pytestmark = pytest.mark.portable


def test_unknown_mutation_name_is_named():
    with pytest.raises(ValueError) as error:
        keras_lr.tune.check_mutations(
            {"learning_rate": [0.1], "lr_decay": [0.5]},
            ["learning_rate", "batch_size"],
        )
    assert str(error.value) == (
        "Argument `hyperparam_mutations` names hyperparameters the trainable "
        "does not read: ['lr_decay']. Expected names among ['batch_size', "
        "'learning_rate']. Received: hyperparam_mutations keys="
        "['learning_rate', 'lr_decay']"
    )


def test_empty_or_non_dict_mutations():
    with pytest.raises(ValueError, match="at least one"):
        keras_lr.tune.check_mutations({}, ["learning_rate"])
    with pytest.raises(TypeError, match="must be a dict"):
        keras_lr.tune.check_mutations(["learning_rate"], ["learning_rate"])


@pytest.mark.parametrize("interval", [4, 10])
def test_perturbation_interval_not_below_epochs(interval):
    with pytest.raises(ValueError) as error:
        keras_lr.tune.check_perturbation_interval(interval, 4)
    assert str(error.value) == (
        "Argument `perturbation_interval` must be < `epochs`: with a longer "
        "interval no trial is ever perturbed. Received: "
        f"perturbation_interval={interval}, epochs=4"
    )
    with pytest.raises(ValueError, match="must be > 0"):
        keras_lr.tune.check_perturbation_interval(0, 4)


def test_learning_rate_key_must_be_in_config():
    with pytest.raises(ValueError) as error:
        keras_lr.tune.ReportAndCheckpoint({"lr": 0.1})
    assert str(error.value) == (
        "Argument `learning_rate_key` must be a key of `hyperparameters` "
        "(['lr']). Received: learning_rate_key='learning_rate'"
    )
    with pytest.raises(ValueError, match="must be > 0"):
        keras_lr.tune.ReportAndCheckpoint({"learning_rate": 0.0})
    with pytest.raises(TypeError, match="must be a dict"):
        keras_lr.tune.ReportAndCheckpoint([("learning_rate", 0.1)])


def _mlp(width: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name=f"mlp{width}",
    )
    model.compile(
        keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy"
    )
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 8)).astype("float32"), rng.integers(0, 3, 32)


def _checkpoint_of(model, folder) -> None:
    """A checkpoint folder as ReportAndCheckpoint writes it (a backup plus
    its description), made without Ray."""
    x, y = _data()
    backup = keras_lr.callbacks.BackupAndRestore(
        str(folder), delete_checkpoint=False
    )
    model.fit(x, y, epochs=1, verbose=0, callbacks=[backup])
    meta = {
        "format": keras_lr.tune.CHECKPOINT_FORMAT,
        "hyperparameters": {"learning_rate": 0.01},
        "learning_rate_key": "learning_rate",
        "model": {
            "name": model.name,
            "weights": [list(w.shape) for w in model.weights],
        },
        "epoch": 1,
        "iterations": 1,
        "learning_rate": 0.01,
        "trial_id": "donor_00000",
    }
    with open(folder / "keras_lr_tune.json", "w") as file:
        json.dump(meta, file)


def test_checkpoint_from_another_model(tmp_path):
    folder = tmp_path / "backup"
    _checkpoint_of(_mlp(16), folder)
    model = _mlp(4)
    x, y = _data()
    callback = keras_lr.tune.ReportAndCheckpoint(
        {"learning_rate": 0.01}, backup_dir=str(folder), restore=False
    )
    with pytest.raises(keras_lr.tune.CheckpointMismatchError) as error:
        model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    message = str(error.value)
    assert message.startswith(
        f"Checkpoint {folder} (trial donor_00000, epoch 1)"
    )
    assert (
        "written by model 'mlp16' with weight shapes [[8, 16], [16], [16, 3], "
        "[3]]; expected this trial's model 'mlp4' with weight shapes [[8, 4], "
        "[4], [4, 3], [3]]" in message
    )
    assert isinstance(error.value, ValueError)


def test_folder_that_is_not_a_tune_checkpoint(tmp_path):
    with pytest.raises(keras_lr.tune.CheckpointMismatchError) as error:
        keras_lr.tune.read_checkpoint(tmp_path)
    assert str(error.value).startswith(
        f"Checkpoint {tmp_path} is not a keras_lr.tune checkpoint: expected "
        "keras_lr_tune.json written by keras_lr.tune.ReportAndCheckpoint."
    )
    (tmp_path / "keras_lr_tune.json").write_text('{"format": "other/2"}')
    with pytest.raises(
        keras_lr.tune.CheckpointMismatchError,
        match="has format 'other/2'; expected 'keras_lr.tune/1'",
    ):
        keras_lr.tune.read_checkpoint(tmp_path)


def test_without_ray_the_import_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    for name in [m for m in sys.modules if m.startswith("keras_lr.tune")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError) as error:
        importlib.import_module("keras_lr.tune")
    assert str(error.value) == (
        'keras_lr.tune needs Ray Tune: pip install "keras-lr[tune]"'
    )


def test_import_keras_lr_does_not_import_ray():
    code = "import sys, keras_lr; print('ray' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
