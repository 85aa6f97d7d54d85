"""`keras_lr.cooldown.branch_cooldowns`: several cooldowns from one saved
stable-phase model, each against a closed form."""

import math

import keras
import numpy as np
import pytest

import keras_lr
from tests.callbacks import helpers

pytestmark = pytest.mark.portable

STEPS = 4


def test_each_branch_decays_from_the_saved_state(tmp_path):
    model = helpers.bias_model(keras.optimizers.SGD(0.1))
    x, y = helpers.zeros_data(STEPS)
    model.fit(x, y, batch_size=helpers.BATCH, epochs=1, verbose=0)
    path = str(tmp_path / "stable.keras")
    model.save(path)
    stable_bias = helpers.bias(model)
    assert stable_bias == pytest.approx(-0.1 * STEPS)

    branches = keras_lr.cooldown.branch_cooldowns(
        path,
        (x, y),
        [4, 8],
        decay_shape="1-sqrt",
        batch_size=helpers.BATCH,
        keep_models=True,
    )
    assert [b.decay_steps for b in branches] == [4, 8]
    for branch in branches:
        length = branch.decay_steps
        assert branch.start_step == STEPS
        # Gradient 1 at every step: the bias falls by each step's rate,
        # 0.1 * (1 - sqrt(i / length)) for i = 0 .. length - 1.
        rates = [0.1 * (1 - math.sqrt(i / length)) for i in range(length)]
        np.testing.assert_allclose(
            helpers.bias(branch.model),
            stable_bias - sum(rates),
            rtol=1e-5,
        )
        steps = int(branch.model.optimizer.iterations.numpy())
        assert steps == STEPS + length
    # The file is untouched: both branches started from the same point.
    reloaded = keras.models.load_model(path)
    assert helpers.bias(reloaded) == stable_bias


def test_bad_lengths_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="Argument `lengths`"):
        keras_lr.cooldown.branch_cooldowns(
            str(tmp_path / "none.keras"), (None, None), []
        )
