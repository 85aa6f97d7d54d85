"""The files of a reproduction: JSON-native values, written atomically.

Every file is written to a temporary name and renamed, so no reader ever
sees half a file. Imports no TensorFlow: the command line checks `--out`
with `check_writable` before anything heavy is loaded.
"""

import csv
import errno
import io
import json
import math
import os
import tempfile
from pathlib import Path

from keras_lr_experiments.errors import UsageError


def finite_or_none(value) -> float | None:
    """`value` as a Python float, or `None` when it is NaN or infinite."""
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(value):
    """Turns NumPy values and non-finite floats into JSON-native ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if isinstance(value, float):
        return finite_or_none(value)
    return value


def write_text(path: Path, text: str) -> None:
    """Writes `text` to `path` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path):
    """The parsed file, or `None` when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: row[key] for key in columns})
    write_text(path, buffer.getvalue())


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def save_figure(figure, path: Path) -> None:
    """Saves a matplotlib figure atomically; the format is `path`'s suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix
    )
    os.close(descriptor)
    try:
        figure.savefig(temporary, dpi=110, bbox_inches="tight")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_writable(folder: Path) -> None:
    """Raises `UsageError` unless files can be created in `folder`.

    Creates nothing: the probe file goes into `folder` if it exists, else
    into its nearest existing parent, and is removed at once.
    """
    folder = Path(folder)
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(
                errno.ENOTDIR, f"{existing} is not a folder"
            )
        descriptor, probe = tempfile.mkstemp(dir=existing, prefix=".probe.")
        os.close(descriptor)
        os.unlink(probe)
    except OSError as error:
        raise UsageError(
            f"Argument `--out` must be a writable folder. Received: "
            f"--out={str(folder)!r} ({error.strerror or error})"
        ) from None
