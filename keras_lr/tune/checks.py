"""Checks of a search's arguments before any trial starts.

Ray's `PopulationBasedTraining` adds a hyperparameter it does not find in
a trial's config (sampling it from the mutation's space), so a misspelt
name is explored without ever reaching the model; a perturbation interval
as long as the run never perturbs. Both would go unnoticed.
"""

from collections.abc import Iterable
from collections.abc import Mapping

from keras_lr import _checks


def check_mutations(hyperparam_mutations, known: Iterable[str]) -> None:
    """Checks that every mutated hyperparameter is one the trainable reads.

    Args:
        hyperparam_mutations: A dict, what `PopulationBasedTraining` takes
            as `hyperparam_mutations`.
        known: The names of the hyperparameters the trainable reads.

    Raises:
        ValueError: for an empty dict or an unknown name.
        TypeError: if `hyperparam_mutations` is not a dict.
    """
    known = sorted(known)
    if not isinstance(hyperparam_mutations, Mapping):
        raise TypeError(
            "Argument `hyperparam_mutations` must be a dict of "
            f"hyperparameter name to search space. Received: "
            f"hyperparam_mutations of type "
            f"{type(hyperparam_mutations).__name__}"
        )
    if not hyperparam_mutations:
        raise ValueError(
            "Argument `hyperparam_mutations` must name at least one "
            f"hyperparameter, one of {known}. Received: "
            "hyperparam_mutations={}"
        )
    unknown = sorted(str(k) for k in hyperparam_mutations if k not in known)
    if unknown:
        raise ValueError(
            "Argument `hyperparam_mutations` names hyperparameters the "
            f"trainable does not read: {unknown}. Expected names among "
            f"{known}. Received: hyperparam_mutations keys="
            f"{sorted(str(k) for k in hyperparam_mutations)}"
        )


def check_perturbation_interval(perturbation_interval, epochs) -> None:
    """Checks that a trial is perturbed at least once before it ends.

    Args:
        perturbation_interval: A Python int > 0, epochs between
            perturbations (`time_attr` counted in epochs).
        epochs: A Python int > 0, the epochs of each trial.

    Raises:
        ValueError: if the interval is not below `epochs`.
    """
    _checks.check_positive_int("perturbation_interval", perturbation_interval)
    _checks.check_positive_int("epochs", epochs)
    if perturbation_interval >= epochs:
        raise ValueError(
            "Argument `perturbation_interval` must be < `epochs`: with a "
            "longer interval no trial is ever perturbed. Received: "
            f"perturbation_interval={perturbation_interval}, epochs={epochs}"
        )
