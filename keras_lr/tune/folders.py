"""The local folder of a trial's backups, and cleaning up after dead trials.

`ReportAndCheckpoint` keeps its backup in a temporary folder of its own.
A `fit` that ends removes it, and so does the callback's garbage
collection or the interpreter's exit. But Ray stops a trial by ending its
worker process, where no Python clean-up runs, so a folder can outlive its
process. Each folder is therefore named after the host and process that
own it (`keras_lr_tune-<host>-<pid>-<random>`), and making a new one
removes those of this host whose process is gone: the next trial, or the
next run, cleans up after a killed one.
"""

import os
import shutil
import socket
import tempfile
import weakref

PREFIX = "keras_lr_tune-"


def _host() -> str:
    # The folder name's fields are split at "-".
    return socket.gethostname().replace("-", "_") or "host"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # Another user's live process.
    return True


def remove_stale(parent: str | None = None) -> list[str]:
    """Removes this host's trial folders whose process has ended.

    Args:
        parent: The folder to look in (default: the system's temporary
            folder).

    Returns:
        The paths removed.
    """
    parent = parent or tempfile.gettempdir()
    host = _host()
    removed = []
    for name in os.listdir(parent):
        if not name.startswith(PREFIX):
            continue
        fields = name[len(PREFIX) :].split("-")
        if len(fields) != 3 or fields[0] != host or not fields[1].isdigit():
            continue
        if _process_alive(int(fields[1])):
            continue
        path = os.path.join(parent, name)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def trial_folder(owner, parent: str | None = None) -> str:
    """A new folder for `owner`'s backups, removed with `owner` or at exit.

    Stale folders of ended processes are removed first.
    """
    remove_stale(parent)
    folder = tempfile.mkdtemp(
        prefix=f"{PREFIX}{_host()}-{os.getpid()}-", dir=parent
    )
    weakref.finalize(owner, shutil.rmtree, folder, ignore_errors=True)
    return folder
