"""A step count that `fit` re-reads at each use (see
`keras_lr._keras_internals.step_count`, which says why)."""

import operator


class StepCount:
    """A count that `fit` re-reads at each use: `read()` at that moment."""

    __slots__ = ("_read",)
    __hash__ = None

    def __init__(self, read):
        self._read = read

    def __index__(self):
        return int(self._read())

    __int__ = __index__

    def __float__(self):
        return float(self.__index__())

    def __bool__(self):
        return self.__index__() != 0

    def __repr__(self):
        return repr(self.__index__())

    __str__ = __repr__

    def __format__(self, spec):
        return format(self.__index__(), spec)


def _count_operator(name, function, reflected=False):
    def method(self, other):
        value = self.__index__()
        return function(other, value) if reflected else function(value, other)

    method.__name__ = name
    return method


for _name in "eq ne lt le gt ge add sub mul truediv floordiv mod".split():
    _function = getattr(operator, _name)
    setattr(StepCount, f"__{_name}__", _count_operator(_name, _function))
    if _name in "add sub mul truediv floordiv mod".split():
        setattr(
            StepCount,
            f"__r{_name}__",
            _count_operator(f"r{_name}", _function, reflected=True),
        )
