"""The progress lines and their estimate of the time left."""

from keras_lr_experiments import progress as progress_lib


class Stream:
    def __init__(self):
        self.lines = []

    def write(self, text):
        self.lines.append(text)

    def flush(self):
        pass


def test_progress_estimates_time_left(monkeypatch):
    # start; begin a (elapsed, task start); end a; begin b (2); end b.
    clock = iter([0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 30.0])
    monkeypatch.setattr(progress_lib.time, "monotonic", lambda: next(clock))
    stream = Stream()
    progress = progress_lib.Progress(4, stream=stream)
    progress.begin("a")
    progress.end()
    progress.begin("b")
    progress.end()
    text = "".join(stream.lines)
    assert "[1/4 | elapsed 0:00:00 | left ~?] a" in text
    # One task took 10 s and 3 are left.
    assert "[2/4 | elapsed 0:00:10 | left ~0:00:30] b" in text


def test_skipped_tasks_do_not_count_in_the_estimate(monkeypatch):
    # start; a: begin, end (skipped, 100 s); b: begin, end (4 s); c: begin.
    clock = iter([0.0, 0.0, 0.0, 100.0, 100.0, 100.0, 104.0, 104.0, 104.0])
    monkeypatch.setattr(progress_lib.time, "monotonic", lambda: next(clock))
    stream = Stream()
    progress = progress_lib.Progress(4, stream=stream)
    progress.begin("a")
    progress.end(skipped=True, note="done before")
    progress.begin("b")
    progress.end()
    progress.begin("c")
    text = "".join(stream.lines)
    assert "    done before\n" in text
    assert "[2/4 | elapsed 0:01:40 | left ~?] b" in text
    # Only b's 4 s count: 2 tasks left.
    assert "[3/4 | elapsed 0:01:44 | left ~0:00:08] c" in text


def test_clock_is_hours_minutes_seconds():
    assert progress_lib.Progress.clock(0) == "0:00:00"
    assert progress_lib.Progress.clock(59.6) == "0:01:00"
    assert progress_lib.Progress.clock(3 * 3600 + 4 * 60 + 5) == "3:04:05"
