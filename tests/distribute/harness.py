"""Runs a worker script on a cluster of local processes.

`run_workers(script, args)` starts one process per worker, each with its
`TF_CONFIG` naming free loopback ports (CPU, one intra- and one inter-op
thread, the default gRPC transport), waits for them within a time bound,
kills whatever is left in every case, and returns each worker's JSON
result: the script writes it to the file named by `KERAS_LR_RESULT`.
`run_single` runs the same script in one process, for the reference run
with the same global batch.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
TIMEOUT = 120.0


class WorkerError(AssertionError):
    """A worker failed; the message holds the tail of its stderr."""


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports free at the time of asking."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps(
        {
            "cluster": {"worker": [f"localhost:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def _env(out_dir, tag: str, extra: dict | None) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=ROOT,
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="",
        KERAS_LR_RESULT=os.path.join(str(out_dir), f"result-{tag}.json"),
    )
    env.pop("TF_CONFIG", None)
    env.update(extra or {})
    return env


def _read(out_dir, tag: str):
    path = os.path.join(str(out_dir), f"result-{tag}.json")
    if not os.path.exists(path):
        return None
    with open(path) as file:
        return json.load(file)


def _kill(process) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


def run_workers(
    script,
    args,
    out_dir,
    num_workers: int = 2,
    timeout: float = TIMEOUT,
    env: dict | None = None,
    worker_env: dict | None = None,
    start: list[int] | None = None,
    allow_kill: bool = False,
) -> list:
    """Runs `script args` on `num_workers` local workers.

    Args:
        script: Path of the worker script.
        args: Its command-line arguments (the same on every worker).
        out_dir: Folder for the results (and the workers' stderr).
        num_workers: Workers named in `TF_CONFIG`.
        timeout: Seconds before every worker still running is killed and
            the run fails.
        env: Extra environment for every worker.
        worker_env: {index: extra environment} for single workers.
        start: Indices of the workers to start (default: all); the others
            are named in `TF_CONFIG` but never start.
        allow_kill: Whether a worker may end by SIGKILL (a kill test): the
            others are then killed too, as a scheduler would.

    Returns:
        Each started worker's result (the parsed JSON, or `None` when it
        wrote none), in the order of `start`.

    Raises:
        WorkerError: when a worker exits with an error, or the time is up.
    """
    ports = free_ports(num_workers)
    start = list(range(num_workers)) if start is None else list(start)
    processes = []
    try:
        for index in start:
            tag = f"w{index}"
            extra = dict(env or {})
            extra.update((worker_env or {}).get(index, {}))
            extra["TF_CONFIG"] = tf_config(ports, index)
            stderr = open(os.path.join(str(out_dir), f"stderr-{tag}.txt"), "w")  # noqa: SIM115
            processes.append(
                (
                    index,
                    subprocess.Popen(
                        [sys.executable, str(script), *map(str, args)],
                        env=_env(out_dir, tag, extra),
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                    ),
                    stderr,
                )
            )
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for _, p, _ in processes):
            if time.monotonic() > deadline:
                raise WorkerError(
                    f"Workers still running after {timeout:g} s: "
                    + _tails(out_dir, processes)
                )
            killed = any(
                p.returncode == -signal.SIGKILL for _, p, _ in processes
            )
            failed = any(
                p.returncode not in (None, 0) for _, p, _ in processes
            )
            if (killed and allow_kill) or (failed and not allow_kill):
                break
            time.sleep(0.1)
    finally:
        for _, process, stderr in processes:
            _kill(process)
            stderr.close()
    for _, process, _ in processes:
        ok = process.returncode == 0 or (
            allow_kill and process.returncode == -signal.SIGKILL
        )
        if not ok:
            raise WorkerError(_tails(out_dir, processes))
    return [_read(out_dir, f"w{index}") for index, _, _ in processes]


def run_single(script, args, out_dir, timeout: float = TIMEOUT, env=None):
    """Runs `script args` in one process (no `TF_CONFIG`); its result."""
    process = subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        env=_env(out_dir, "single", env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    finally:
        _kill(process)
    if process.returncode != 0:
        raise WorkerError(stderr.decode()[-4000:])
    return _read(out_dir, "single")


def _tails(out_dir, processes) -> str:
    parts = []
    for index, process, _ in processes:
        path = os.path.join(str(out_dir), f"stderr-w{index}.txt")
        with open(path) as file:
            tail = file.read()[-3000:]
        parts.append(f"\n--- worker {index} (rc={process.returncode}):\n{tail}")
    return "".join(parts)
