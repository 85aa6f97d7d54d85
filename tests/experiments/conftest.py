"""A small slice of the digits for fast reproduction runs."""

import pytest

from keras_lr.experiments import datasets


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
