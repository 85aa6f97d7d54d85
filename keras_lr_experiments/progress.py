"""The progress lines of a reproduction: one per task, with time left."""

import sys
import time


class Progress:
    """One line per task: position, elapsed time and time left.

    The estimate is the mean time of the tasks done so far in this call
    (skipped ones excluded) times the tasks left.
    """

    def __init__(self, total: int, stream=None):
        self.total = total
        self.done = 0
        self.worked = 0
        self.work_seconds = 0.0
        self.start = time.monotonic()
        self.stream = stream if stream is not None else sys.stdout

    @staticmethod
    def clock(seconds: float) -> str:
        """`seconds` as H:MM:SS."""
        seconds = int(round(seconds))
        return (
            f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        )

    def begin(self, what: str) -> None:
        elapsed = time.monotonic() - self.start
        left = self.total - self.done
        if self.worked:
            eta = self.clock(self.work_seconds / self.worked * left)
        else:
            eta = "?"
        self.write(
            f"[{self.done + 1}/{self.total} | elapsed {self.clock(elapsed)}"
            f" | left ~{eta}] {what}"
        )
        self._task_start = time.monotonic()

    def end(self, skipped: bool = False, note: str = "") -> None:
        self.done += 1
        seconds = time.monotonic() - self._task_start
        if not skipped:
            self.worked += 1
            self.work_seconds += seconds
        if note:
            self.write(f"    {note}")

    def write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
