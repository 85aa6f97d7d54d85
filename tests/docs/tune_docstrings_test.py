"""keras_lr.tune's docstring examples run (they start a local Ray).

As docstrings_test.py, in a file of its own: see there.
"""

from tests.docs import blocks
from tests.docs.docstrings_test import RAY
from tests.docs.docstrings_test import run_examples


def test_tune_docstring_examples_run(tmp_path):
    examples = [
        example
        for example in blocks.docstring_examples()
        if example.where.startswith(RAY)
    ]
    assert [example.where for example in examples] == [
        "keras_lr/tune/report.py ReportAndCheckpoint"
    ]
    run_examples(examples, tmp_path)
