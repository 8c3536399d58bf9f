"""squawk lints every SQL file under sql/."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SQL_FILES = sorted(REPO.glob("sql/**/*.sql"))
SQUAWK = Path(sys.executable).with_name("squawk")


@pytest.mark.parametrize("path", SQL_FILES, ids=[str(p.relative_to(REPO)) for p in SQL_FILES])
def test_squawk_finds_nothing(path):
    result = subprocess.run(
        [str(SQUAWK), "--config", str(REPO / ".squawk.toml"), str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_there_is_sql_to_lint():
    assert SQL_FILES
