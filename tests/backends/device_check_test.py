"""`benchmarks/device_check.py`, the script run on a GPU when one is lent,
runs end to end on CPU (a short form of it: one test file, few steps)."""

import os
import subprocess
import sys

from tests.repository import ROOT


def test_device_check_reports_device_tests_and_costs(tmp_path):
    command = [
        sys.executable,
        "benchmarks/device_check.py",
        "--out",
        str(tmp_path),
        "--tests",
        "tests/control/controller_test.py::"
        "test_current_rate_and_momentum_are_the_next_steps_exactly",
        "--rounds",
        "1",
        "--steps",
        "10",
        "--blocks",
        "2",
        "--block",
        "5",
        "--pairs",
        "1",
    ]
    env = dict(os.environ, PYTHONPATH=ROOT)
    # The script bounds each of its runs itself (--timeout); this bound
    # only ends a hang.
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (tmp_path / "device_check.txt").read_text()
    assert "devices [CpuDevice" in report
    assert " passed" in report and " failed" not in report
    for line in ("step level (jax)", "epoch hooks", "paired CPU ratio"):
        assert line in report
    for name in ("CyclicLR", "OneCycleLR", "ReduceLROnPlateau (control)"):
        assert report.count(name) >= 2, name
