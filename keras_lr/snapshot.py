"""Every training variable of a model, out and back.

One module owns which variables make up "the training state" and how a
copy of them is taken and put back. The range test and the race restore a
model after trying rates on it, `BackupAndRestore` (and so Ray Tune's
trials) writes the values to disk, and the plateau and divergence
callbacks roll back to a good point. Each goes through here:

- `training_variables(model)`: the whole state, in a fixed order (what a
  restore must put back bitwise).
- `optimizer_state(model)`: the optimizer's slots, without the clock and
  the rate (what a rollback rewinds, with the weights, while the schedule
  goes on).
- `take` / `put`: host copies (NumPy arrays) out and back, checked
  by position; `save` / `load`: the same copies in an `.npz` file.
- `DeviceSnapshot`: copies kept on the device, for the race's many swaps.
- `random_state` / `set_random_state`: the random stream that is not a
  variable. Keras' unseeded layers (`Dropout(seed=None)`, ...) draw from
  a seed-generator variable of the model on TensorFlow and JAX, which the
  copies above hold; on PyTorch they draw from torch's global generator,
  so a restore that must leave no trace puts that back too.
  `random_state_to_json` / `random_state_from_json`: the same copies as
  JSON-native text, for `BackupAndRestore`'s state file, which also
  keeps NumPy's global stream (`numpy_random_state_to_json`), where
  Keras' JAX `fit` draws its shuffle orders.
"""

import base64
import binascii

import keras
import numpy as np

from keras_lr import _backend
from keras_lr import _files
from keras_lr import _keras_internals as internals
from keras_lr import _model_state


def _unique(variables) -> list:
    seen = set()
    unique = []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            unique.append(variable)
    return unique


def training_variables(model) -> list:
    """Every variable a restore must put back, in a fixed order.

    The model's variables (seed generators included), then the
    optimizer's (`iterations`, slots, Keras' own rate variable), then the
    installed rate controller's (the multiplier), each once. Two builds of
    one compiled model give lists of the same shapes, on every backend:
    the controller's other variables (curves, records), which JAX's train
    step carries as the optimizer's, are left out, as on other backends
    (the callbacks that own them set them again).

    Args:
        model: A compiled `keras.Model`.

    Returns:
        A list of Keras variables.
    """
    from keras_lr.control import installed_controller

    optimizer = model.optimizer
    variables = list(model.variables) + internals.own_variables(optimizer)
    controller = installed_controller(optimizer)
    if controller is not None:
        variables += controller.state_variables
    return _unique(variables)


def optimizer_state(model) -> list:
    """The optimizer's variables that hold training state (slots, moments).

    The step counters and the rate (Keras' rate variable, or the rate
    controller's) are left out: rolling back rewinds what was learned,
    not the clock (schedules go on from the current step) and not the rate
    (the caller is about to cut it).
    """
    from keras_lr.control import installed_controller

    optimizer = model.optimizer
    base = internals.base_optimizer(optimizer)
    skip = {id(internals.iterations_variable(base))}
    if base is not optimizer:
        skip.add(id(internals.iterations_variable(optimizer)))
    controller = installed_controller(optimizer)
    if controller is not None:
        skip.update(id(v) for v in controller.state_variables)
        skip.add(id(controller.learning_rate))
    else:
        skip.add(id(internals.rate_slot(base)))
    own = internals.own_variables(optimizer)
    return _unique(v for v in own if id(v) not in skip)


def first_mismatch(variables, values, holder: str = "the copy") -> str | None:
    """What first differs between `variables` and saved `values` (count,
    then shape and dtype by position), in words, or `None`; `holder`
    names where the values come from ("the file")."""
    if len(variables) != len(values):
        return (
            f"{holder} holds {len(values)} variables; the model, its optimizer "
            f"and rate controller have {len(variables)}"
        )
    for index, (variable, value) in enumerate(zip(variables, values)):
        shape = tuple(int(d) for d in variable.shape)
        dtype = np.dtype(keras.backend.standardize_dtype(variable.dtype))
        value = np.asarray(value)
        if value.shape != shape or value.dtype != dtype:
            return (
                f"variable {index} ({variable.path}) is {dtype.name} "
                f"{list(shape)}; {holder} holds {value.dtype.name} "
                f"{list(value.shape)}"
            )
    return None


def take(variables) -> list[np.ndarray]:
    """Host copies of `variables`' values (each its own array)."""
    _model_state.sync_known_models()
    return [np.array(_backend.to_numpy(v), copy=True) for v in variables]


def put(variables, values) -> None:
    """Assigns `values` (from `take`) back to `variables`, bit for bit.

    Raises:
        ValueError: when the values do not fit the variables (another
            model, or one whose optimizer changed its variables); the
            message names the first variable that differs.
    """
    mismatch = first_mismatch(variables, values)
    if mismatch is not None:
        raise ValueError(f"Cannot put the copy back: {mismatch}.")
    _model_state.sync_known_models()
    for variable, value in zip(variables, values):
        variable.assign(value)


def random_state() -> list | None:
    """Copies of torch's global generator states (CPU, then each CUDA
    device's) on PyTorch, where unseeded layers draw from them; `None` on
    other backends (their stream is a model variable)."""
    if _backend.name() != "torch":
        return None
    import torch

    states = [torch.get_rng_state()]
    if torch.cuda.is_available():
        states += torch.cuda.get_rng_state_all()
    return states


def set_random_state(states: list | None) -> None:
    """Puts back what `random_state` returned (nothing for `None`).

    CUDA states go to the devices of the same index; those of devices
    this process lacks (copies written on a machine with more GPUs, or
    read where CUDA is unavailable) are left out.
    """
    if states is None:
        return
    import torch

    torch.set_rng_state(states[0])
    cuda = states[1:]
    if cuda and torch.cuda.is_available():
        for index, state in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, index)


def random_state_to_json(states: list | None) -> dict | None:
    """What `random_state` returned, as JSON-native text (`None` stays
    `None`): `{"cpu": ..., "cuda": [...]}`, each generator state's bytes
    in base64 (6,744 characters for the CPU generator of torch 2.13)."""
    if states is None:
        return None
    cpu, *cuda = (
        base64.b64encode(state.numpy().tobytes()).decode("ascii")
        for state in states
    )
    return {"cpu": cpu, "cuda": cuda}


def random_state_from_json(entry) -> list:
    """The generator states that `random_state_to_json` wrote, for
    `set_random_state`.

    Raises:
        ValueError: when `entry` is not such text, or its CPU state is
            not the size of this torch's (another torch version or a
            damaged file), in words.
    """
    import torch

    def state(text):
        data = base64.b64decode(text.encode("ascii"), validate=True)
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)

    try:
        states = [state(entry["cpu"]), *(state(t) for t in entry["cuda"])]
    except (AttributeError, KeyError, TypeError, binascii.Error) as error:
        raise ValueError(
            "The random state must be a dict of base64 text "
            '{"cpu": str, "cuda": [str, ...]}. '
            f"Received: {str(entry)[:80]!r} ({error})"
        ) from None
    expected = torch.get_rng_state().numel()
    if states[0].numel() != expected:
        raise ValueError(
            f"The CPU generator state must be {expected} bytes (this "
            f"torch's). Received: {states[0].numel()} bytes"
        )
    return states


def numpy_random_state_to_json() -> dict:
    """NumPy's global random state (`np.random.get_state()`) as
    JSON-native text. Keras' `fit` on JAX draws each epoch's shuffle
    order of NumPy arrays from it (`np.random.permutation`), as may a
    user's `PyDataset`."""
    # The legacy global stream: the one Keras draws from.
    state = np.random.get_state()  # noqa: NPY002
    name, keys, position, has_gauss, gauss = state
    return {
        "bit_generator": name,
        "keys": base64.b64encode(
            np.ascontiguousarray(keys, "<u4").tobytes()
        ).decode("ascii"),
        "position": int(position),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(gauss),
    }


def numpy_random_state_from_json(entry) -> tuple:
    """What `numpy_random_state_to_json` wrote, for `np.random.set_state`.

    Raises:
        ValueError: when `entry` is not such text, in words.
    """
    try:
        keys = np.frombuffer(
            base64.b64decode(entry["keys"].encode("ascii"), validate=True),
            dtype="<u4",
        ).astype(np.uint32)
        state = (
            str(entry["bit_generator"]),
            keys,
            int(entry["position"]),
            int(entry["has_gauss"]),
            float(entry["cached_gaussian"]),
        )
    except (AttributeError, KeyError, TypeError, binascii.Error) as error:
        raise ValueError(
            "The NumPy random state must be a dict with `bit_generator`, "
            "`keys` (base64), `position`, `has_gauss` and "
            f"`cached_gaussian`. Received: {str(entry)[:80]!r} ({error})"
        ) from None
    if state[0] != "MT19937" or keys.size != 624:
        raise ValueError(
            "The NumPy random state must be MT19937's 624 keys. Received: "
            f"{state[0]!r} with {keys.size} keys"
        )
    return state


def set_numpy_random_state(state: tuple) -> None:
    """Puts back what `numpy_random_state_from_json` returned."""
    np.random.set_state(state)  # noqa: NPY002 - the stream Keras uses


def save(path: str, values) -> None:
    """Writes host copies to `path` (`.npz`), atomically: a reader sees
    the old file or the new one, never part of one."""
    _files.write_npz(path, {f"v{i:05d}": v for i, v in enumerate(values)})


def load(path: str) -> list[np.ndarray]:
    """The host copies `save` wrote to `path`, in order."""
    with np.load(path) as archive:
        return [archive[f"v{i:05d}"] for i in range(len(archive.files))]


class DeviceSnapshot:
    """Copies of `variables` that stay on the device.

    Taking and putting back move no data through the host. On TensorFlow,
    where every variable is a plain resource variable (not mirrored under
    a strategy), a copy is one `ReadVariableOp` and a put one
    `AssignVariableOp` per variable, on handles looked up once, without
    the checks of Keras' `assign` (several times faster per swap; see
    `benchmarks/race_bench.py`). A read keeps its value when the variable
    is later updated in place (TensorFlow copies a shared buffer before
    writing to it), so a taken copy never changes.

    On PyTorch a copy also holds torch's global generator states (its
    last item; see `random_state`), so that a model put back draws the
    same dropout masks as when it was taken, as on other backends.

    Args:
        variables: The variables to copy, usually
            `keras_lr.snapshot.training_variables(model)`.
    """

    def __init__(self, variables):
        self.variables = list(variables)
        self._handles = internals.raw_variable_handles(self.variables)

    def take(self) -> list:
        """Device copies of every variable's current value."""
        _model_state.sync_known_models()
        if self._handles is not None:
            return internals.read_handles(self._handles)
        values = [keras.ops.copy(v.value) for v in self.variables]
        states = random_state()
        return values if states is None else [*values, states]

    def put(self, values) -> None:
        """Assigns copies from `take` back."""
        if self._handles is not None:
            internals.assign_handles(self._handles, values)
            return
        if len(values) > len(self.variables):
            set_random_state(values[-1])
            values = values[:-1]
        _model_state.sync_known_models()
        # JAX's train step donates (deletes) the arrays of the state it
        # is given: the variables get their own, the copy stays usable.
        own = _backend.is_jax()
        for variable, value in zip(self.variables, values):
            variable.assign(keras.ops.copy(value) if own else value)
