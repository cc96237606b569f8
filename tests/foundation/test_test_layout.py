"""The test suite's layout: one ``tests`` package, helpers in ``tests/helpers``, no path tricks.

Every folder of tests is a package, so same-named modules of two folders cannot collide and
any set of folders runs in one pytest call; helpers are imported as ``tests.helpers.<module>``,
never through a ``sys.path`` insertion or ``from conftest import``; and no test helper ships
inside the ``hdc_lightning`` package.
"""

from __future__ import annotations

import re

from tests.helpers.configs import REPO

TESTS = REPO / "tests"
# calls of insert/append/extend on sys.path, item assignment to it, += on it
SYS_PATH_EDIT = re.compile(r"sys\.path\s*(\.\s*(insert|append|extend)\s*\(|\[[^\]]*\]\s*=(?!=)|\+=)")
CONFTEST_IMPORT = re.compile(r"^\s*(from\s+conftest\s+import|import\s+conftest\b)", re.M)


def _python_files() -> list:
    return sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_sys_path_edits_or_conftest_imports():
    bad = []
    for path in _python_files():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(REPO)
        if SYS_PATH_EDIT.search(text):
            bad.append(f"{rel}: edits sys.path (import helpers as tests.helpers.<module>)")
        if CONFTEST_IMPORT.search(text):
            bad.append(f"{rel}: imports from a conftest (move the helper to tests/helpers/)")
    assert not bad, "\n".join(bad)


def test_every_test_folder_is_a_package():
    folders = {p.parent for p in _python_files()}
    missing = [str(f.relative_to(REPO)) for f in sorted(folders) if not (f / "__init__.py").is_file()]
    assert not missing, f"no __init__.py in {', '.join(missing)}"


def test_test_helpers_do_not_ship_in_the_package():
    assert not (REPO / "hdc_lightning" / "testing.py").exists(), "test helpers live in tests/helpers/"
    assert not (REPO / "hdc_lightning" / "testing").exists(), "test helpers live in tests/helpers/"
