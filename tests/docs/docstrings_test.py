"""The docstrings' examples run, after the API reference's set-up.

Each example runs in a fresh namespace after the visible set-up block of
docs/api/index.md, all in one process, from a temporary folder, with
warnings as errors. See tests/docs/blocks.py.
"""

from tests.docs import blocks
from tests.docs.examples_test import check
from tests.repository import ROOT

# The API reference's set-up block is run before every docstring example.
SETUP_PAGE = ROOT / "docs" / "api" / "index.md"


def test_docstring_examples_run(tmp_path):
    examples = blocks.docstring_examples()
    # Every public schedule and callback has one; the parser finding
    # fewer means it broke, not that the docstrings lost them.
    assert len(examples) >= 30
    setup = blocks.markdown_blocks(SETUP_PAGE)[0]
    check(blocks.run_blocks(examples, tmp_path, setup=setup))
