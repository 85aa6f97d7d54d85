"""Files written whole: a reader sees the old file or the new one, never a
part, even when the writer is killed midway."""

import contextlib
import json
import os

import numpy as np

# Prefix of a file being written; its final name follows it.
TEMPORARY_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic(path, mode: str = "w"):
    """Opens a temporary file beside `path`; on leaving the block without
    an error, flushes it to disk and renames it to `path` (else removes
    it)."""
    path = os.fspath(path)
    directory, name = os.path.split(path)
    temporary = os.path.join(directory or ".", TEMPORARY_PREFIX + name)
    try:
        with open(temporary, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def write_json(path, data, indent: int | None = 1) -> None:
    """Writes `data` to `path` as JSON, atomically."""
    with atomic(path) as file:
        json.dump(data, file, indent=indent)


def write_npz(path, arrays: dict) -> None:
    """Writes named arrays to `path` (`np.savez`), atomically."""
    with atomic(path, "wb") as file:
        np.savez(file, **arrays)
