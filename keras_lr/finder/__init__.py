"""The learning-rate range test: result object and suggestion functions.

`keras_lr.find_learning_rate` (in `keras_lr.finder.find`) runs the test;
`keras_lr.callbacks.LRRangeTest` is the callback behind it.
"""

from keras_lr.finder import suggestions
from keras_lr.finder.result import RangeTestResult

__all__ = [
    "RangeTestResult",
    "suggestions",
]
