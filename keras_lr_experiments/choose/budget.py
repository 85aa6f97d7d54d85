"""The budget of part `choose`: its sizes, and the step counter that
measures what every way spends.

Every way of choosing the rate gets the same `Budget.steps` training
steps per workload and seed, its search included: the range test's
steps, the race's, every PBT and ASHA trial's, and the training at the
rate chosen. Nothing here trusts arithmetic on what a search was asked
to do: the searches that run through `fit` (`keras_lr.find_learning_rate`
and `keras_lr.choose_learning_rate`) train a `CountingModel`, whose
`train_step` adds one to a counter outside the model, so the library's
bitwise restore of the model cannot reset it; the training after them
runs in `loop.Trainer`, counted by the optimizer's `iterations`; the Ray
trials report the steps they trained, counted the same way.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Budget:
    """The sizes of the part; `FULL` and `QUICK` below.

    Attributes:
        steps: Training steps per workload, seed and way, search included.
        eval_every: Steps between evaluations on the validation and test
            splits (the curves, the steps to the target, PBT's and ASHA's
            reports).
        range_test_steps: The range test's sweep (`num_steps`).
        race_budget: The race's own steps (`budget` of
            `keras_lr.choose_learning_rate`; its range test comes on top).
        race_candidates: The race's `candidates`.
        population: PBT's population; each trial trains
            `steps // population`.
        perturbation_interval: Steps between PBT's perturbations.
        asha_rates: ASHA's trials (rates log-spaced over `asha_range`).
        asha_grace: ASHA's grace period in steps (its first rung).
        grid_rates: Rates of the grid reference, log-spaced over
            `grid_range`; each trains `steps` (19x the budget).
        seeds: The seeds of every way.
        grid_seeds: The seeds of the grid reference.
    """

    steps: int
    eval_every: int
    range_test_steps: int
    race_budget: int
    race_candidates: int
    population: int
    perturbation_interval: int
    asha_rates: int
    asha_grace: int
    grid_rates: int
    seeds: tuple
    grid_seeds: tuple
    grid_range: tuple = (1e-5, 1.0)
    asha_range: tuple = (1e-4, 1e-1)
    range_test_range: tuple = (1e-6, 10.0)

    def to_dict(self) -> dict:
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()
        }


FULL = Budget(
    steps=320,
    eval_every=20,
    range_test_steps=60,
    race_budget=96,
    race_candidates=4,
    population=4,
    perturbation_interval=20,
    # Enough trials that ASHA always wants more than the budget (the first
    # trial runs to 80 steps, each other one at least 20): the stop at
    # the budget, not ASHA running out of trials, ends it.
    asha_rates=16,
    asha_grace=20,
    grid_rates=19,
    seeds=(0, 1, 2),
    grid_seeds=(0,),
)
QUICK = Budget(
    steps=64,
    eval_every=8,
    range_test_steps=16,
    race_budget=24,
    race_candidates=4,
    population=4,
    perturbation_interval=8,
    asha_rates=8,
    asha_grace=8,
    grid_rates=19,
    seeds=(0,),
    grid_seeds=(0,),
)


class StepCounter:
    """Counts the training steps of the models it makes.

    The count lives in a `tf.Variable` held by this object only (not by
    the model), so `keras_lr`'s restore of every model and optimizer
    variable after a range test or a race leaves it alone.
    """

    def __init__(self):
        import tensorflow as tf

        self.variable = tf.Variable(0, dtype=tf.int64, trainable=False)

    @property
    def count(self) -> int:
        return int(self.variable.numpy())

    def model(self, inputs, outputs):
        """A Keras model whose every `train_step` adds one to the count."""
        import keras

        counter = self.variable

        class CountingModel(keras.Model):
            def train_step(self, data):
                counter.assign_add(1)
                return super().train_step(data)

        return CountingModel(inputs, outputs)
