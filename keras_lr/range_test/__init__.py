"""The learning-rate range test: callback, one-call runner, result, and the
suggestion functions that read a rate off its curve.

`keras_lr.find_learning_rate` runs the test and leaves the model as it was;
`keras_lr.callbacks.LRRangeTest` is the callback behind it.
`keras_lr.choose_learning_rate` goes on to a race of candidates across the
curve's bracket (successive halving on held-out data): the answer to trust
when it matters.
"""

from keras_lr.range_test import suggestions
from keras_lr.range_test.callback import LRRangeTest
from keras_lr.range_test.find import find_learning_rate
from keras_lr.range_test.race import choose_learning_rate
from keras_lr.range_test.race_result import RaceResult
from keras_lr.range_test.result import RangeTestResult
from keras_lr.range_test.sweep import sweep_learning_rates

__all__ = [
    "LRRangeTest",
    "RaceResult",
    "RangeTestResult",
    "choose_learning_rate",
    "find_learning_rate",
    "suggestions",
    "sweep_learning_rates",
]
