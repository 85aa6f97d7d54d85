"""What the searches explore, the metric they rank by, and the study's
defaults.

Imports only the standard library: the command line builds its choices
and defaults from here before TensorFlow or Ray is loaded.
"""

HYPERPARAMETERS = ("learning_rate", "batch_size")
SCHEDULES = ("constant", "warmup_cosine")
SCHEDULERS = ("pbt", "asha")
METHODS = ("pbt", "asha", "grid")
METRIC = "val_loss"
MODE = "min"

# `keras-lr tune --study`: PBT and ASHA against a grid of fixed rates.
STUDY = {
    "epochs": 12,
    "population": 4,
    "perturbation_interval": 3,
    "asha_samples": 9,
    "asha_grace_period": 2,
    "asha_reduction_factor": 3,
}


def population_rates(population: int) -> list[float]:
    """`population` rates evenly spaced in log10 over [10^-3.5, 10^-1]:
    PBT's starting rates, and the grid of fixed rates it is compared to."""
    return [
        10 ** (-3.5 + 2.5 * (i + 0.5) / population) for i in range(population)
    ]


def asha_rates(samples: int) -> list[float]:
    """`samples` rates evenly spaced in log10 over [10^-4, 10^-1]: ASHA's
    trials, in that order (the search shuffles them)."""
    return [10 ** (-4 + 3 * (i + 0.5) / samples) for i in range(samples)]
