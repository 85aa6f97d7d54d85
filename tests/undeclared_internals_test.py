"""No module but `keras_lr/_keras_internals.py` relies on private Keras or
TensorFlow behaviour: a scan of the package's syntax finds each such use.

What the scan counts as private:
- an attribute whose name starts with one underscore, read or written on
  anything but the method's own `self` / `cls` or `super()` (our own
  classes talk to each other through public names too);
- an import from `keras.src` or `tensorflow.python`, or a name imported
  with a leading underscore from outside keras_lr;
- the calls and names in `FORBIDDEN`: frames, raw ops, another object's
  `__dict__`, Python's attribute machinery on someone else's object.
"""

import ast
import pathlib

import pytest

from keras_lr import _keras_internals

PACKAGE = pathlib.Path(_keras_internals.__file__).parent

FORBIDDEN = (
    "sys._getframe",
    "sys._current_frames",
    "inspect.currentframe",
    "inspect.stack",
    "tf.raw_ops",
    "tf.python",
    "object.__setattr__",
    "vars",
    "__dict__",
    "gc.get_referrers",
)


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _is_super_call(node) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "super"
    )


def private_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) for each private use in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            name = node.attr
            own = (
                isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
            ) or _is_super_call(node.value)
            if name.startswith("_") and not name.startswith("__") and not own:
                found.append((node.lineno, f"private attribute .{name}"))
            dotted = _dotted(node)
            for forbidden in FORBIDDEN:
                if dotted is not None and (
                    dotted == forbidden or dotted.startswith(forbidden + ".")
                ):
                    found.append((node.lineno, forbidden))
            if name == "__dict__":
                found.append((node.lineno, "__dict__"))
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.startswith(("keras.src", "tensorflow.python")):
                found.append((node.lineno, f"from {module} import"))
            elif not module.startswith("keras_lr") and node.level == 0:
                found += [
                    (node.lineno, f"from {module} import {alias.name}")
                    for alias in node.names
                    if alias.name.startswith("_")
                ]
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, f"import {alias.name}")
                for alias in node.names
                if alias.name.startswith(("keras.src", "tensorflow.python"))
            ]
    # One report per line and kind.
    return sorted(set(found))


@pytest.mark.parametrize(
    "source, what",
    [
        ("model._initial_epoch = 3", "private attribute ._initial_epoch"),
        ("held._model = None", "private attribute ._model"),
        ("frame = sys._getframe(1)", "sys._getframe"),
        ("tf.raw_ops.ReadVariableOp(resource=h, dtype=d)", "tf.raw_ops"),
        ("object.__setattr__(model, 'x', 1)", "object.__setattr__"),
        ("own = vars(model)", "vars"),
        ("from keras.src.trainers import epoch_iterator", "from keras.src"),
        ("from keras.optimizers import _private", "_private"),
    ],
)
def test_the_scan_finds_each_kind(source, what):
    uses = private_uses(source)
    assert any(what in found for _, found in uses), uses


def test_the_scan_allows_our_own_state():
    source = (
        "class A(B):\n"
        "    def f(self):\n"
        "        self._x = 1\n"
        "        super()._reset()\n"
        "    @classmethod\n"
        "    def g(cls):\n"
        "        return cls._y\n"
    )
    assert private_uses(source) == []


def test_no_module_but_keras_internals_relies_on_private_behaviour():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_keras_internals.py":
            continue
        for line, what in private_uses(path.read_text()):
            offenders.append(f"{path.relative_to(PACKAGE)}:{line}: {what}")
    assert offenders == [], (
        "Declare these in keras_lr/_keras_internals.py (or use a public "
        "name):\n" + "\n".join(offenders)
    )
