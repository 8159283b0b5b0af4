"""The type checker: mypy, configured in pyproject.toml ([tool.mypy]), finds no error in the
platform (cerebro/, envsettings/, sherlock/): every function is annotated, the core strictly."""

import subprocess
import sys

from support import REPO


def test_mypy_finds_no_error(tmp_path):
    """`mypy` over the platform exits 0 (a fresh cache: nothing stale hides an error)."""
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Success: no issues found" in result.stdout
