"""What a reproduction runs: `Settings` and the range test's defaults.

Imports no TensorFlow: the command line builds its defaults from here
before anything heavy is loaded.
"""

import dataclasses
from pathlib import Path

from keras_lr_experiments.names import OPTIMIZERS
from keras_lr_experiments.names import PARTS

# The range test of part `fair`: the range test's own defaults (an
# exponential sweep from 1e-7 to 10 in 100 steps, "valley" rule) on a
# fresh model, repeated 3 times with reshuffled data because one sweep's
# valley moves by up to 10x between shuffles; the pick is the geometric
# mean of the repeats.
RANGE_TEST = {
    "start_lr": 1e-7,
    "end_lr": 10.0,
    "num_steps": 100,
    "repeats": 3,
    "method": "valley",
}


@dataclasses.dataclass
class Settings:
    """Everything `reproduce` needs besides the data.

    Attributes:
        dataset: A string, the data set name (`Dataset.name`).
        epochs, batch_size: Ints.
        seeds: A list of ints, one run per seed per configuration.
        out: A `Path`, the results folder.
        parts: The parts to run, among `names.PARTS`.
        optimizers: The optimizers of parts `optimizers` and `fair`.
        range_test_steps: An int, the steps of each range test.
        range_test_start_lr, range_test_end_lr: Floats, its rate range.
        range_test_repeats: An int, sweeps per range test.
        quiet: A bool: no per-epoch Keras output.
    """

    dataset: str = "digits"
    epochs: int = 20
    batch_size: int = 32
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0, 1, 2])
    out: Path = Path("runs")
    parts: list[str] = dataclasses.field(default_factory=lambda: list(PARTS))
    optimizers: list[str] = dataclasses.field(
        default_factory=lambda: list(OPTIMIZERS)
    )
    range_test_steps: int = RANGE_TEST["num_steps"]
    range_test_start_lr: float = RANGE_TEST["start_lr"]
    range_test_end_lr: float = RANGE_TEST["end_lr"]
    range_test_repeats: int = RANGE_TEST["repeats"]
    quiet: bool = False
