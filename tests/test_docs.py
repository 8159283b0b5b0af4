"""The README says what the code does: its outcome table is the error tree's, row for row."""

import re

from cerebro import errors
from support import REPO

ROW = re.compile(r"^\| `(\w+)` \| `(\w+)` \| (\d{3}) \| ([^|]+) \|", re.M)


def test_readme_outcome_table_is_the_error_tree():
    """Every kind, its type, HTTP status and queued disposition, in the order of KINDS."""
    readme = (REPO / "README.md").read_text()
    rows = [(name, kind, int(status), queued.strip()) for name, kind, status, queued
            in ROW.findall(readme)]
    expected = [(k.__name__, k.type, k.http_status, k.queued.value) for k in errors.KINDS]
    assert rows == expected
