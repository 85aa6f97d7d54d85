"""The example finder itself, on made-up text."""

import textwrap

from tests.docs import blocks


def test_markdown_blocks_keeps_python_only_with_lines(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        textwrap.dedent(
            """\
            # Title

            ```python
            a = 1
            ```

            ```text
            not code
            ```

            - item:
              ```python
              b = a + 1
              ```
            """
        )
    )
    found = blocks.markdown_blocks(page)
    assert [block.code for block in found] == ["a = 1\n", "b = a + 1\n"]
    assert [block.line for block in found] == [4, 13]


def test_example_sections_skip_formula_blocks():
    docstring = textwrap.dedent(
        """\
        Summary.

        ```python
        rate = formula(step)
        ```

        Args:
            x: A value.

        Example:

        ```python
        run_me()
        ```
        """
    )
    assert blocks._example_sections(docstring) == [(12, "run_me()")]


def test_absolute_paths_found():
    block = blocks.Block("x", 1, 'f("/shared/run1")\ng("logs")\n')
    assert blocks.absolute_paths(block) == ["/shared/run1"]


def test_run_blocks_reports_a_failure(tmp_path):
    good = blocks.Block("page.md", 3, "a = 1\n")
    bad = blocks.Block("page.md", 9, "print(a)\nundefined_name\n")
    done = blocks.run_blocks([good, bad], tmp_path)
    assert done.returncode != 0
    assert 'File "page.md", line 10' in done.stderr
    assert "NameError" in done.stderr


def test_run_blocks_turns_warnings_into_errors(tmp_path):
    block = blocks.Block(
        "page.md", 1, "import warnings\nwarnings.warn('careful')\n"
    )
    done = blocks.run_blocks([block], tmp_path)
    assert done.returncode != 0
    assert "UserWarning: careful" in done.stderr
