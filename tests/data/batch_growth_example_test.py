"""End-to-end run of examples/batch_growth.py on a short schedule."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.mark.slow
def test_batch_growth_example_writes_its_results(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import batch_growth
    finally:
        sys.path.pop(0)
    summary = batch_growth.main(
        [
            "--out",
            str(tmp_path),
            "--seeds",
            "0",
            "1",
            "--epochs",
            "3",
            "--milestones",
            "1",
            "2",
        ]
    )
    for name in (
        "config.json",
        "history.csv",
        "summary.json",
        "README.md",
        "test_accuracy_vs_epochs.png",
        "test_accuracy_vs_updates.png",
    ):
        assert os.path.getsize(os.path.join(tmp_path, name)) > 0
    with open(os.path.join(tmp_path, "config.json")) as f:
        train = json.load(f)
    n = train["train_samples"]
    # 16 -> 80 -> 400 at epochs 1 and 2 (0-based); lr_decay keeps 16.
    per_epoch = [-(-n // b) for b in (16, 80, 400)]
    assert summary["batch_growth"]["updates"] == sum(per_epoch)
    assert summary["lr_decay"]["updates"] == 3 * per_epoch[0]
    assert summary["batch_growth"]["batch_sizes"] == [16, 80, 400]
    cap = n // 10
    assert summary["hybrid"]["batch_sizes"] == [16, 80, cap]
