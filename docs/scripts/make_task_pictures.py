"""Run the task pages' examples and keep the pictures they save.

Each page under docs/tasks/ is an executed example (tests/test_docs.py runs
it): its code saves its picture as `task-<page>.png` in the working
directory. This script runs the pages' Python blocks the same way, in a
temporary folder, and copies the pictures they write to docs/images/, where
the pages show them.

    python docs/scripts/make_task_pictures.py            # every task page, and keras-hub.md
    python docs/scripts/make_task_pictures.py text.md    # some of them
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from test_docs import python_blocks  # noqa: E402


def run_page(page: Path, images: Path) -> list[Path]:
    """Run `page`'s Python blocks in a fresh folder; copy its PNGs to `images`."""
    import keras

    keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        previous = Path.cwd()
        os.chdir(folder)
        try:
            namespace: dict = {"__name__": "__docs__"}
            for line, code in python_blocks(page.read_text(encoding="utf-8")):
                source = "\n" * (line - 1) + code
                exec(compile(source, str(page), "exec"), namespace)  # noqa: S102
        finally:
            os.chdir(previous)
        saved = []
        for picture in sorted(Path(folder).glob("*.png")):
            target = images / picture.name
            shutil.copyfile(picture, target)
            saved.append(target)
        return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="page names under docs/tasks/ (default: all)")
    arguments = parser.parse_args()
    folder = ROOT / "docs" / "tasks"
    # Pages outside docs/tasks/ that are executed examples with pictures of their own.
    others = [ROOT / "docs" / "keras-hub.md"]
    named = [
        folder / name if (folder / name).exists() else ROOT / "docs" / name
        for name in arguments.pages
    ]
    pages = named or sorted(folder.glob("*.md")) + others
    for page in pages:
        for picture in run_page(page, ROOT / "docs" / "images"):
            print(f"{page.relative_to(ROOT)} -> {picture.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
