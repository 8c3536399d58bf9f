"""The agentic history goes down to base and up again with an identical schema (pg_dump --schema-only)."""

from __future__ import annotations

import re
import subprocess

from infra import migrations

from .test_agentic_support import KEY


def _schema(stack) -> str:
    out = subprocess.run(
        [str(stack.local.pg_bindir / "pg_dump"), "--schema-only", stack.dsn(KEY)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # pg_dump 15.14+ writes a random \restrict key per run; everything else must match.
    return re.sub(r"^\\(un)?restrict .*$", "", out, flags=re.MULTILINE)


def test_down_to_base_and_up_again_gives_an_identical_schema(stack):
    dsn = stack.dsn(KEY)
    head = migrations.heads(KEY)
    assert migrations.current(dsn, KEY) in head
    before = _schema(stack)
    try:
        migrations.downgrade(dsn, KEY, "base")
        assert migrations.current(dsn, KEY) is None
        base = _schema(stack)
        assert "agent_audit_log" not in base
        assert "template_public_conversation_history" not in base
    finally:
        migrations.upgrade(dsn, KEY, "head")
    assert _schema(stack) == before
