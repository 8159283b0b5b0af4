"""PEP 8 with lines of at most 100 characters, checked by pycodestyle over every Python file."""

import os

import pycodestyle

from support import REPO

MAX_LINE_LENGTH = 100
CHECKED = ("cerebro", "envsettings", "sherlock", "modules", "bench", "tests", "examples")
# Virtualenvs, caches and build output are not the project's own code.
SKIP_DIRS = {".venv", "venv", "build", "dist", "__pycache__", "node_modules"}


def _skipped(name):
    """True for a folder never checked: hidden, a virtualenv, a cache or build output."""
    return name.startswith(".") or name in SKIP_DIRS or name.endswith(".egg-info")


def python_files():
    """Every *.py file under the checked folders, sorted."""
    found = []
    for top in CHECKED:
        for root, dirs, files in os.walk(REPO / top):
            dirs[:] = [d for d in dirs if not _skipped(d)]
            found.extend(os.path.join(root, f) for f in files if f.endswith(".py"))
    return sorted(found)


class _Collect(pycodestyle.BaseReport):
    """A pycodestyle report keeping every violation as ``path:line:col: CODE message``."""

    def __init__(self, options):
        super().__init__(options)
        self.violations = []

    def error(self, line_number, offset, text, check):
        """Record a violation that is not ignored (pycodestyle's default ignore list applies)."""
        code = super().error(line_number, offset, text, check)
        if code:
            path = os.path.relpath(self.filename, REPO)
            self.violations.append(f"{path}:{line_number}:{offset + 1}: {text}")
        return code


def test_pep8_with_lines_of_at_most_100_characters():
    """No pycodestyle violation anywhere (as `pycodestyle --max-line-length 100`)."""
    files = python_files()
    assert files, "no Python file found to check"
    style = pycodestyle.StyleGuide(max_line_length=MAX_LINE_LENGTH, reporter=_Collect)
    report = style.check_files(files)
    assert not report.violations, (
        f"{len(report.violations)} pycodestyle violation(s) "
        f"(max line length {MAX_LINE_LENGTH}):\n" + "\n".join(report.violations))
