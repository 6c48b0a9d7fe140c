"""Every Python code block of the documentation runs.

The ```python blocks of each page under docs/ (and of README.md) are run in
order, in one namespace per page, in a fresh temporary working directory, so
a page reads like a script and files it writes land in the temporary folder.
Blocks in other fences (```text, ```bash, ...) are not run. To keep a Python
block from running (multi-machine set-up, say), put this line right before
its fence:

    <!-- docs-test: skip -->
"""

from __future__ import annotations

import linecache
import re
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    path
    for path in (ROOT / "docs").rglob("*.md")
    if path.relative_to(ROOT / "docs").parts[0] not in ("scripts", "snippets")
) + [ROOT / "README.md"]
SKIP = "<!-- docs-test: skip -->"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[ \t]*(?P<info>[^\n`]*)$")

# README.md opens with a fragment that names a model, images and labels of the
# reader's own; it runs on the demo's.
PRELUDES = {
    "README.md": (
        "from keras_explainable import demo as _demo\n"
        "model = _demo.load_demo_model()\n"
        "_data = _demo.make_shapes(4, seed=18)\n"
        "images, labels = _data.images, _data.labels\n"
    ),
}


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Return `(first line number, code)` of each Python block to run in `text`."""
    blocks = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        indent, fence = match["indent"], match["fence"]
        language = match["info"].strip().split(" ")[0].lstrip("{.").rstrip("}").lower()
        previous = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
        start = index + 1
        index = start
        while index < len(lines) and not (
            lines[index].strip().startswith(fence[0] * len(fence))
            and lines[index].strip().strip(fence[0]) == ""
        ):
            index += 1
        body = [
            line[len(indent) :] if line.startswith(indent) else line for line in lines[start:index]
        ]
        if language in ("python", "py") and previous != SKIP:
            blocks.append((start + 1, "\n".join(body) + "\n"))
        index += 1
    return blocks


def test_block_extraction():
    text = "\n".join(
        [
            "```python",
            "a = 1",
            "```",
            "```text",
            "not run",
            "```",
            SKIP,
            "```python",
            "b = 2",
            "```",
            "!!! note",
            "    ```python",
            "    c = 3",
            "    ```",
        ]
    )
    assert python_blocks(text) == [(2, "a = 1\n"), (13, "c = 3\n")]


CODE_PAGES = [page for page in PAGES if python_blocks(page.read_text(encoding="utf-8"))]


def test_pages_with_code_are_found():
    names = {str(page.relative_to(ROOT)) for page in CODE_PAGES}
    assert {"README.md", "docs/getting-started.md", "docs/custom-methods.md"} <= names


@pytest.mark.parametrize("page", CODE_PAGES, ids=[str(p.relative_to(ROOT)) for p in CODE_PAGES])
def test_page_code_runs(page, tmp_path, monkeypatch):
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    assert blocks, "CODE_PAGES lists only pages with Python blocks"
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    name = str(page.relative_to(ROOT))
    namespace: dict = {"__name__": "__docs__"}
    if name in PRELUDES:
        exec(compile(PRELUDES[name], f"<prelude of {name}>", "exec"), namespace)  # noqa: S102
    # Each block is compiled at its own line of the page, and the page's code
    # is registered as the file's source, so that tracebacks quote the page
    # and AutoGraph can read the source of functions defined there.
    source_lines = [""] * len(page.read_text(encoding="utf-8").splitlines())
    for line, code in blocks:
        for offset, text in enumerate(code.splitlines()):
            source_lines[line - 1 + offset] = text
    linecache.cache[name] = (0, None, [text + "\n" for text in source_lines], name)
    for line, code in blocks:
        source = "\n" * (line - 1) + code
        try:
            exec(compile(source, name, "exec"), namespace)  # noqa: S102
        except Exception as error:
            raise AssertionError(
                f"{name}: the code block at line {line} failed: {error!r}"
            ) from error
