"""The docstrings' examples run, after the API reference's set-up.

Each example runs in a fresh namespace after the visible set-up block of
docs/api/index.md, all in one process, from a temporary folder, with
warnings as errors. See tests/docs/blocks.py. The examples that start
Ray (keras_lr/tune/) are in tune_docstrings_test.py, a file of their own
so that the test command's two workers can run them beside these.
"""

from tests.docs import blocks
from tests.docs.examples_test import check
from tests.repository import ROOT

# The API reference's set-up block is run before every docstring example.
SETUP_PAGE = ROOT / "docs" / "api" / "index.md"
RAY = "keras_lr/tune/"


def run_examples(examples, tmp_path):
    setup = blocks.markdown_blocks(SETUP_PAGE)[0]
    check(blocks.run_blocks(examples, tmp_path, setup=setup))


def test_docstring_examples_run(tmp_path):
    examples = [
        example
        for example in blocks.docstring_examples()
        if not example.where.startswith(RAY)
    ]
    # Every public schedule and callback has one; the parser finding
    # fewer means it broke, not that the docstrings lost them.
    assert len(examples) >= 30
    run_examples(examples, tmp_path)
