"""Which runs each part of the reproduction holds.

Part `lr`: Adam at 0.1, 0.01 and 0.001 (the article's first figure).
Part `optimizers`: the five approaches at LR 0.001, default settings (its
second figure). Part `fair`: the five approaches, each at the rate our
race (`keras_lr.choose_learning_rate`) chooses for it (beyond the
article).
"""

import dataclasses

from keras_lr_experiments.errors import UsageError
from keras_lr_experiments.names import OPTIMIZERS
from keras_lr_experiments.names import PARTS

ADAM_RATES = (0.1, 0.01, 0.001)
SAME_RATE = 0.001
EXPERIMENT_NAMES = {
    "lr": "adam_lrs",
    "optimizers": "optimizers_lr0.001",
    "fair": "optimizers_range_test_lr",
    # Its own workloads, not the data set's: `<out>/choose`.
    "choose": "choose",
}
LABELS = {
    "sgd_annealing": "SGD + step annealing",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run.

    `learning_rate` is `None` in part `fair` until the range test has
    picked it.
    """

    part: str
    experiment: str
    group: str
    optimizer: str
    learning_rate: float | None
    seed: int

    @property
    def name(self) -> str:
        return f"{self.group}_seed{self.seed}"

    @property
    def label(self) -> str:
        text = LABELS[self.optimizer]
        if self.part == "lr":
            text += f" lr={self.learning_rate:g}"
        return text


def experiment_name(dataset: str, part: str) -> str:
    return f"{dataset}_{EXPERIMENT_NAMES[part]}"


def check_parts(parts) -> None:
    for part in parts:
        if part not in PARTS:
            raise UsageError(
                f"Argument `--parts` must name parts among {', '.join(PARTS)}."
                f" Received: --parts={part!r}"
            )


def make_plan(
    dataset: str, parts, seeds, optimizers=OPTIMIZERS
) -> list[RunSpec]:
    """Every run of the chosen parts, seeds innermost."""
    check_parts(parts)
    runs = []
    for part in PARTS:
        # Part `choose` plans its own runs (`keras_lr_experiments.choose`).
        if part not in parts or part == "choose":
            continue
        experiment = experiment_name(dataset, part)
        if part == "lr":
            groups = [("adam", rate, f"adam_lr{rate:g}") for rate in ADAM_RATES]
        elif part == "optimizers":
            groups = [
                (name, SAME_RATE, f"{name}_lr{SAME_RATE:g}")
                for name in optimizers
            ]
        else:
            groups = [(name, None, name) for name in optimizers]
        for optimizer, rate, group in groups:
            for seed in seeds:
                runs.append(
                    RunSpec(part, experiment, group, optimizer, rate, seed)
                )
    return runs
