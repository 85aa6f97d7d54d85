"""In-graph learning-rate schedules for Keras 3.

Every class is a `keras.optimizers.schedules.LearningRateSchedule`, written
in `keras.ops`, XLA-compilable and serializable with the model. The names
the seed articles use map as follows:

| seed name                 | keras_lr                                      |
|---------------------------|-----------------------------------------------|
| exponential decay         | `ExponentialDecay`                            |
| step decay / annealing    | `ExponentialDecay(staircase=True)`, or        |
|                           | `PiecewiseConstantDecay` for explicit values  |
| time-based decay          | `InverseTimeDecay` (alias `TimeBasedDecay`)   |
| polynomial / linear decay | `PolynomialDecay` (`power=1` is linear)       |
| cosine decay / annealing  | `CosineDecay`, `CosineDecayRestarts`          |
| Gaussian decay            | `GaussianDecay`                               |
| cyclical learning rate    | `CyclicalLearningRate`                        |
| one-cycle                 | `OneCycle`                                    |
| warmup                    | `LinearWarmup` (wraps any schedule)           |
| joining schedules         | `JoinedSchedule`                              |
"""

from keras_lr.schedules.cosine import CosineDecay
from keras_lr.schedules.cosine import CosineDecayRestarts
from keras_lr.schedules.cyclical import CyclicalLearningRate
from keras_lr.schedules.exponential import ExponentialDecay
from keras_lr.schedules.gaussian import GaussianDecay
from keras_lr.schedules.inverse_time import InverseTimeDecay
from keras_lr.schedules.inverse_time import TimeBasedDecay
from keras_lr.schedules.join import JoinedSchedule
from keras_lr.schedules.one_cycle import OneCycle
from keras_lr.schedules.piecewise import PiecewiseConstantDecay
from keras_lr.schedules.polynomial import PolynomialDecay
from keras_lr.schedules.scaled import ScaledSchedule
from keras_lr.schedules.warmup import LinearWarmup
from keras_lr.schedules.warmup_stable_decay import WarmupStableDecay

__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "CyclicalLearningRate",
    "ExponentialDecay",
    "GaussianDecay",
    "InverseTimeDecay",
    "JoinedSchedule",
    "LinearWarmup",
    "OneCycle",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "ScaledSchedule",
    "TimeBasedDecay",
    "WarmupStableDecay",
]
