"""A small slice of the digits and short settings for fast runs."""

import pytest

from keras_lr_experiments import datasets
from keras_lr_experiments.settings import Settings


@pytest.fixture(scope="session")
def small_digits():
    full = datasets.load_digits()
    return datasets.Dataset(
        name="digits",
        x_train=full.x_train[:96],
        y_train=full.y_train[:96],
        x_val=full.x_val[:32],
        y_val=full.y_val[:32],
        num_classes=10,
        kind="digits",
        description="first 96 train / 32 validation digits",
    )


def make_settings(tmp_path, **overrides):
    """Short `Settings` writing under `tmp_path`; `overrides` replace."""
    values = dict(
        dataset="digits",
        epochs=2,
        batch_size=32,
        seeds=[0],
        out=tmp_path / "runs",
        parts=["lr"],
        optimizers=["adam"],
        range_test_steps=10,
        quiet=True,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_for():
    """`make_settings`, as a fixture."""
    return make_settings
