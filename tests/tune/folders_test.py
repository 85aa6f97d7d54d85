"""A trial's backup folder does not outlive a killed trial process."""

import gc
import os
import signal
import subprocess
import sys
import tempfile

import keras_lr.tune
from keras_lr.tune import folders

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

KILLED_TRIAL = """
import os, signal, sys
import keras_lr.tune
callback = keras_lr.tune.ReportAndCheckpoint({"learning_rate": 0.1})
print(os.path.dirname(callback.backup_dir), flush=True)
# Ray ends a stopped trial's worker process: no Python clean-up runs.
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_trials_folder_is_removed_by_the_next(tmp_path, monkeypatch):
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=ROOT)
    run = subprocess.run(
        [sys.executable, "-c", KILLED_TRIAL],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    left = run.stdout.strip()
    assert os.path.dirname(left) == str(tmp_path)
    assert os.path.isdir(left)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    callback = keras_lr.tune.ReportAndCheckpoint({"learning_rate": 0.1})
    assert not os.path.exists(left)
    mine = os.path.dirname(callback.backup_dir)
    assert os.path.dirname(mine) == str(tmp_path)
    assert os.path.basename(mine).startswith(
        f"{folders.PREFIX}{folders._host()}-{os.getpid()}-"
    )
    del callback
    gc.collect()
    assert not os.path.exists(mine)


def test_live_and_foreign_folders_are_kept(tmp_path):
    live = tmp_path / f"{folders.PREFIX}{folders._host()}-{os.getpid()}-x1"
    other_host = tmp_path / f"{folders.PREFIX}elsewhere-1-x2"
    unrelated = tmp_path / "keras_lr_tune_notes"
    for path in (live, other_host, unrelated):
        path.mkdir()
    assert folders.remove_stale(str(tmp_path)) == []
    assert live.is_dir() and other_host.is_dir() and unrelated.is_dir()
