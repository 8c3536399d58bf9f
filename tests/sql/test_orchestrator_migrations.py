"""The orchestrator history goes down to base and back up to head with an identical schema."""

from __future__ import annotations

import re
import subprocess

from infra.migrations import current, downgrade, heads, upgrade

KEY = "orchestrator"


def schema_dump(stack) -> str:
    out = subprocess.run(
        [str(stack.local.pg_bindir / "pg_dump"), "--schema-only", stack.dsn(KEY)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # pg_dump's per-run \restrict token is the only line that differs between two identical dumps.
    return re.sub(r"^\\(un)?restrict .*$", "", out, flags=re.MULTILINE)


def test_down_to_base_and_up_again_gives_the_same_schema(stack):
    dsn = stack.dsn(KEY)
    assert current(dsn, KEY) == heads(KEY)[0]
    before = schema_dump(stack)
    downgrade(dsn, KEY, "base")
    assert current(dsn, KEY) is None
    base = schema_dump(stack)
    assert "agents" not in base and "partman.template_public" not in base
    upgrade(dsn, KEY, "head")
    assert schema_dump(stack) == before
