"""Atomic writes, JSON-native values and the `--out` check."""

import json
import math

import numpy as np
import pytest

from keras_lr_experiments import _files
from keras_lr_experiments.errors import UsageError


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    _files.write_json(path, {"complete": True})

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(_files.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        _files.write_json(path, {"complete": False})
    assert json.loads(path.read_text()) == {"complete": True}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_json_safe_gives_native_values_and_none_for_non_finite():
    value = {
        1: np.float32(0.5),
        "rates": np.array([1.0, math.nan, math.inf]),
        "pair": (np.int64(3), -math.inf),
        "name": "adam",
    }
    safe = _files.json_safe(value)
    assert safe == {
        "1": 0.5,
        "rates": [1.0, None, None],
        "pair": [3, None],
        "name": "adam",
    }
    assert type(safe["pair"][0]) is int
    json.dumps(safe, allow_nan=False)


def test_check_writable_creates_nothing(tmp_path):
    _files.check_writable(tmp_path / "a" / "b")
    _files.check_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_check_writable_refuses_a_path_under_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    with pytest.raises(UsageError) as error:
        _files.check_writable(blocker / "runs")
    message = str(error.value)
    assert message.startswith("Argument `--out` must be a writable folder.")
    assert f"Received: --out={str(blocker / 'runs')!r}" in message
    assert "is not a folder" in message
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
