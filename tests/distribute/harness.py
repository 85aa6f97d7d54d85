"""Runs a worker script on a cluster of local processes.

`run_workers(script, args)` starts one process per worker, each with its
`TF_CONFIG` naming free loopback ports (CPU, one intra- and one inter-op
thread, the default gRPC transport), waits for them, kills whatever is
left in every case, and returns each worker's JSON result: the script
writes it to the file named by `KERAS_LR_RESULT`. `run_single` runs the
same script in one process, for the reference run with the same global
batch.

No limit on the total time: a loaded machine makes a run slow, not wrong.
A watchdog on progress instead: a worker calls `beat()` as it moves on
(a step trained, a scenario begun), which writes a counter to the file
named by `KERAS_LR_HEARTBEAT`. The run fails only when no worker has
beaten for `timeout` seconds (one waiting in a collective for a slow peer
is not stuck while that peer beats); the harness then has every worker
write the stacks of all its threads to its stderr (`faulthandler`, armed
by `arm_stack_dump()`), kills them and shows those stacks, so a hang
ends the test and says where it is.
"""

import faulthandler
import json
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
# Seconds without a beat from any worker before the run counts as hung.
TIMEOUT = 300.0
# Seconds a worker gets to write its stacks before it is killed.
DUMP_SECONDS = 2.0
_HEARTBEAT = "KERAS_LR_HEARTBEAT"
_beats = 0


def beat() -> None:
    """Records that this worker made progress (no-op outside the
    harness). Call it from the work itself, never from a timer thread: a
    hung worker must stop beating."""
    global _beats
    path = os.environ.get(_HEARTBEAT)
    if not path:
        return
    _beats += 1
    with open(path, "w") as file:
        file.write(str(_beats))


def arm_stack_dump() -> None:
    """Makes SIGUSR1 write every thread's stack to stderr (the harness
    sends it to a worker that stopped making progress)."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)


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
    env[_HEARTBEAT] = _heartbeat_path(out_dir, tag)
    env.pop("TF_CONFIG", None)
    env.update(extra or {})
    return env


def _read(out_dir, tag: str):
    path = os.path.join(str(out_dir), f"result-{tag}.json")
    if not os.path.exists(path):
        return None
    with open(path) as file:
        return json.load(file)


def _heartbeat_path(out_dir, tag: str) -> str:
    return os.path.join(str(out_dir), f"heartbeat-{tag}.txt")


class _Watchdog:
    """Tells when no worker has made progress for `timeout` seconds."""

    def __init__(self, out_dir, tags: list[str], timeout: float):
        self._paths = [_heartbeat_path(out_dir, tag) for tag in tags]
        self._timeout = timeout
        self._seen = [self._read(p) for p in self._paths]
        self._last = time.monotonic()

    @staticmethod
    def _read(path: str) -> str | None:
        try:
            with open(path) as file:
                return file.read()
        except OSError:
            return None

    def stalled(self) -> bool:
        now = [self._read(p) for p in self._paths]
        if now != self._seen:
            self._seen, self._last = now, time.monotonic()
        return time.monotonic() - self._last > self._timeout

    def describe(self) -> str:
        beats = ", ".join(
            f"{os.path.basename(p)}={v!r}"
            for p, v in zip(self._paths, self._seen)
        )
        return (
            f"No worker made progress for {self._timeout:g} s (last beats: "
            f"{beats}); the stacks of every thread follow."
        )


def _dump_and_tail(out_dir, processes) -> str:
    """Has every worker still running write its stacks, then kills it;
    the tails of every worker's stderr."""
    running = [p for _, p, _ in processes if p.poll() is None]
    for process in running:
        process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + DUMP_SECONDS
    while time.monotonic() < deadline and all(
        p.poll() is None for p in running
    ):
        time.sleep(0.1)
    for process in running:
        _kill(process)
    return _tails(out_dir, processes)


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
        timeout: Seconds without progress (a `beat()`) from any worker
            before the workers still running write their stacks, are
            killed, and the run fails.
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
        WorkerError: when a worker exits with an error, or no worker made
            progress for `timeout` seconds.
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
        watchdog = _Watchdog(out_dir, [f"w{i}" for i in start], timeout)
        while any(p.poll() is None for _, p, _ in processes):
            if watchdog.stalled():
                raise WorkerError(
                    watchdog.describe()
                    + _dump_and_tail(out_dir, processes)
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
    """Runs `script args` in one process (no `TF_CONFIG`); its result.
    `timeout`: seconds without progress, as for `run_workers`."""
    path = os.path.join(str(out_dir), "stderr-single.txt")
    with open(path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(script), *map(str, args)],
            env=_env(out_dir, "single", env),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        processes = [("single", process, stderr)]
        try:
            watchdog = _Watchdog(out_dir, ["single"], timeout)
            while process.poll() is None:
                if watchdog.stalled():
                    raise WorkerError(
                        watchdog.describe()
                        + _dump_and_tail(out_dir, processes)
                    )
                time.sleep(0.1)
        finally:
            _kill(process)
    if process.returncode != 0:
        raise WorkerError(_tails(out_dir, processes))
    return _read(out_dir, "single")


def _tails(out_dir, processes) -> str:
    parts = []
    for index, process, _ in processes:
        tag = index if index == "single" else f"w{index}"
        path = os.path.join(str(out_dir), f"stderr-{tag}.txt")
        with open(path) as file:
            tail = file.read()[-3000:]
        parts.append(f"\n--- worker {index} (rc={process.returncode}):\n{tail}")
    return "".join(parts)
