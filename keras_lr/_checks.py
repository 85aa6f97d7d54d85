"""Argument validation shared by every public class.

Every message has the Keras form: what is wrong, what was expected, and
what was received, e.g.
"Argument `decay_steps` must be > 0. Received: decay_steps=0".
"""

import math
import numbers
from collections.abc import Iterable
from collections.abc import Sequence


def _received(name: str, value) -> str:
    return f"Received: {name}={value!r}"


def _type_error(name: str, expected: str, value) -> TypeError:
    return TypeError(
        f"Argument `{name}` must be {expected}. {_received(name, value)} "
        f"(of type {type(value).__name__})"
    )


def is_real(value) -> bool:
    """True for Python and NumPy real numbers, False for bools and tensors."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_real(name: str, value) -> None:
    if not is_real(value):
        raise _type_error(name, "a Python number", value)
    if not math.isfinite(float(value)):
        raise ValueError(
            f"Argument `{name}` must be finite. {_received(name, value)}"
        )


def check_int(name: str, value) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise _type_error(name, "an integer", value)


def check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise _type_error(name, "a bool", value)


def check_positive(name: str, value) -> None:
    check_real(name, value)
    if value <= 0:
        raise ValueError(
            f"Argument `{name}` must be > 0. {_received(name, value)}"
        )


def check_non_negative(name: str, value) -> None:
    check_real(name, value)
    if value < 0:
        raise ValueError(
            f"Argument `{name}` must be >= 0. {_received(name, value)}"
        )


def check_positive_int(name: str, value) -> None:
    check_int(name, value)
    if value <= 0:
        raise ValueError(
            f"Argument `{name}` must be > 0. {_received(name, value)}"
        )


def check_non_negative_int(name: str, value) -> None:
    check_int(name, value)
    if value < 0:
        raise ValueError(
            f"Argument `{name}` must be >= 0. {_received(name, value)}"
        )


def check_open_interval(name: str, value, low: float, high: float) -> None:
    check_real(name, value)
    if not low < value < high:
        raise ValueError(
            f"Argument `{name}` must be in the open interval ({low}, {high}). "
            f"{_received(name, value)}"
        )


def check_closed_interval(name: str, value, low: float, high: float) -> None:
    check_real(name, value)
    if not low <= value <= high:
        raise ValueError(
            f"Argument `{name}` must be in [{low}, {high}]. "
            f"{_received(name, value)}"
        )


def check_choice(name: str, value, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(
            f"Argument `{name}` must be one of {expected}. "
            f"{_received(name, value)}"
        )


def check_greater(name: str, value, other_name: str, other) -> None:
    if not value > other:
        raise ValueError(
            f"Argument `{name}` must be > `{other_name}`. "
            f"Received: {name}={value!r}, {other_name}={other!r}"
        )


def check_number_list(name: str, value, min_length: int = 0) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _type_error(name, "a list of Python numbers", value)
    for item in value:
        if not is_real(item):
            raise _type_error(name, "a list of Python numbers", value)
    if len(value) < min_length:
        raise ValueError(
            f"Argument `{name}` must have at least {min_length} element(s). "
            f"{_received(name, value)}"
        )


def check_strictly_increasing(name: str, value) -> None:
    for previous, current in zip(value[:-1], value[1:]):
        if not current > previous:
            raise ValueError(
                f"Argument `{name}` must be strictly increasing. "
                f"{_received(name, value)}"
            )


def is_tensor_like(value) -> bool:
    """True for tensors and variables (Keras' or TensorFlow's)."""
    try:
        import keras
    except ImportError:  # pragma: no cover - keras is a dependency
        return False
    return isinstance(value, keras.Variable) or keras.ops.is_tensor(value)


def is_rate_like(value) -> bool:
    """True for what a schedule accepts as a rate: a Python or NumPy real
    number, or a tensor or variable (checked further by `rate_value`)."""
    return is_real(value) or is_tensor_like(value)


def rate_value(name: str, value) -> float | None:
    """The current value of a rate argument, as a Python float.

    Accepts Python and NumPy real numbers, scalar numeric tensors and
    scalar variables (read now: a variable's value at construction). Returns
    `None` for a symbolic tensor, whose value is not known until it runs.
    Raises `TypeError` for anything else and `ValueError` for a non-finite
    value.
    """
    expected = "a Python number, a scalar tensor or a `keras.Variable`"
    if is_real(value):
        number = float(value)
    elif is_tensor_like(value):
        import keras

        dtype = keras.backend.standardize_dtype(value.dtype)
        if dtype == "bool" or not (
            keras.backend.is_float_dtype(dtype)
            or keras.backend.is_int_dtype(dtype)
        ):
            raise _type_error(name, expected, value)
        if tuple(value.shape) != ():
            raise ValueError(
                f"Argument `{name}` must be a scalar. Received: {name} of "
                f"shape {tuple(value.shape)}"
            )
        try:
            number = float(keras.ops.convert_to_numpy(value))
        except (TypeError, ValueError, NotImplementedError, AttributeError):
            return None  # a symbolic tensor: checked where it is known
    else:
        raise _type_error(name, expected, value)
    if not math.isfinite(number):
        raise ValueError(
            f"Argument `{name}` must be finite. {_received_rate(name, value)}"
        )
    return number


def _received_rate(name: str, value) -> str:
    if is_real(value):
        return _received(name, value)
    import keras

    number = float(keras.ops.convert_to_numpy(value))
    return f"Received: {name}={number!r} (of type {type(value).__name__})"


def check_non_negative_rate(name: str, value) -> None:
    """`value` is a rate (see `rate_value`) >= 0 where its value is known."""
    number = rate_value(name, value)
    if number is not None and number < 0:
        raise ValueError(
            f"Argument `{name}` must be >= 0. {_received_rate(name, value)}"
        )


def check_positive_rate(name: str, value) -> None:
    """`value` is a rate (see `rate_value`) > 0 where its value is known."""
    number = rate_value(name, value)
    if number is not None and number <= 0:
        raise ValueError(
            f"Argument `{name}` must be > 0. {_received_rate(name, value)}"
        )
