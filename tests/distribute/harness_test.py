"""The harness's watchdog (no TensorFlow): a worker that is slow but
makes progress runs to its end, however long; a hung one ends the run,
with the stacks of its threads."""

import textwrap
import time

import pytest

from tests.distribute import harness

STALL = 1.5

# Beats every 0.2 s for 4 s in all: longer than STALL, never silent
# for it.
SLOW = """
import os, time
from tests.distribute import harness
harness.arm_stack_dump()
for _ in range(20):
    harness.beat()
    time.sleep(0.2)
with open(os.environ["KERAS_LR_RESULT"], "w") as file:
    file.write('{"done": true}')
"""

# Beats once, then waits forever in a function the stacks must name.
HUNG = """
import threading
from tests.distribute import harness
harness.arm_stack_dump()
harness.beat()

def waits_forever_for_a_peer():
    threading.Event().wait()

waits_forever_for_a_peer()
"""

# Worker 0 beats for 4 s; worker 1 waits silently for it (as one stuck in
# a collective for a slow peer), then finishes.
PAIR = """
import os, sys, time
from tests.distribute import harness
harness.arm_stack_dump()
flag = os.path.join(sys.argv[1], "flag")
if os.environ["ROLE"] == "busy":
    for _ in range(20):
        harness.beat()
        time.sleep(0.2)
    open(flag, "w").close()
else:
    while not os.path.exists(flag):
        time.sleep(0.05)
"""


def _script(tmp_path, text):
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(text))
    return path


def test_slow_but_progressing_workers_are_not_killed(tmp_path):
    script = _script(tmp_path, SLOW)
    results = harness.run_workers(script, [], tmp_path, timeout=STALL)
    assert results == [{"done": True}, {"done": True}]


def test_slow_but_progressing_single_run_is_not_killed(tmp_path):
    script = _script(tmp_path, SLOW)
    assert harness.run_single(script, [], tmp_path, timeout=STALL) == {
        "done": True
    }


def test_a_silent_worker_waiting_for_a_busy_one_is_not_killed(tmp_path):
    script = _script(tmp_path, PAIR)
    results = harness.run_workers(
        script,
        [tmp_path],
        tmp_path,
        timeout=STALL,
        worker_env={0: {"ROLE": "busy"}, 1: {"ROLE": "waits"}},
    )
    assert results == [None, None]


@pytest.mark.parametrize("runner", ["workers", "single"])
def test_a_hung_worker_ends_the_run_with_its_stacks(tmp_path, runner):
    script = _script(tmp_path, HUNG)
    begin = time.monotonic()
    with pytest.raises(harness.WorkerError) as caught:
        if runner == "workers":
            harness.run_workers(script, [], tmp_path, timeout=STALL)
        else:
            harness.run_single(script, [], tmp_path, timeout=STALL)
    # The stall limit plus the time to dump and kill, far below a hang.
    assert time.monotonic() - begin < 60
    message = str(caught.value)
    assert message.startswith(f"No worker made progress for {STALL:g} s")
    assert "waits_forever_for_a_peer" in message
    assert "Current thread" in message or "Thread 0x" in message
