"""Optimistic locking on agents and agent_sessions under two concurrent writers (two connections, threads)."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg import sql

from .test_agentic_support import connect, make_tenant

ROWS = {"agents": ("agent_id", "config"), "agent_sessions": ("session_id", "context")}


def _wait_until_blocked(admin, pid: int) -> None:
    """Poll until backend `pid` waits on a row lock; the bound only keeps a broken run from hanging."""
    for _ in range(1200):
        if admin.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]:
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"backend {pid} never waited on the row lock")


@pytest.mark.parametrize("table", list(ROWS))
def test_the_second_of_two_concurrent_writers_gets_a_stale_version_error(stack, table):
    key, column = ROWS[table]
    with connect(stack) as admin:
        tenant = make_tenant(admin)
        row_id = tenant.agent_id if table == "agents" else tenant.session_id
        read_version = admin.execute(
            sql.SQL("SELECT version FROM {} WHERE {} = %s").format(sql.Identifier(table), sql.Identifier(key)),
            (row_id,),
        ).fetchone()[0]
        update = sql.SQL("UPDATE {} SET {} = %s, version = %s WHERE {} = %s").format(
            sql.Identifier(table), sql.Identifier(column), sql.Identifier(key)
        )
        outcome: dict[str, object] = {}

        with (
            connect(stack, role="app", autocommit=False) as first,
            connect(stack, role="app", autocommit=False) as second,
        ):
            for conn in (first, second):
                conn.execute("SELECT set_config('app.current_user_id', %s, false)", (str(tenant.user_id),))
                conn.commit()
            # Both writers read the same version; the first updates and holds the row lock.
            first.execute(update, (psycopg.types.json.Jsonb({"writer": "first"}), read_version + 1, row_id))

            def second_writer() -> None:
                try:
                    second.execute(update, (psycopg.types.json.Jsonb({"writer": "second"}), read_version + 1, row_id))
                    second.commit()
                    outcome["second"] = "committed"
                except psycopg.Error as exc:
                    second.rollback()
                    outcome["second"] = exc

            thread = threading.Thread(target=second_writer)
            thread.start()
            _wait_until_blocked(admin, second.info.backend_pid)
            first.commit()
            thread.join()

        error = outcome["second"]
        assert isinstance(error, psycopg.Error), error
        assert error.sqlstate == "40001"
        assert f"{table}.version: stale version" in str(error)
        final = admin.execute(
            sql.SQL("SELECT {}, version FROM {} WHERE {} = %s").format(
                sql.Identifier(column), sql.Identifier(table), sql.Identifier(key)
            ),
            (row_id,),
        ).fetchone()
        assert final == ({"writer": "first"}, read_version + 1)


def test_a_retry_with_the_fresh_version_succeeds(stack):
    with connect(stack) as admin:
        tenant = make_tenant(admin)
        admin.execute(
            "UPDATE agent_sessions SET context = '{\"n\": 1}', version = 2 WHERE session_id = %s",
            (tenant.session_id,),
        )
        with pytest.raises(psycopg.Error):
            admin.execute(
                "UPDATE agent_sessions SET context = '{\"n\": 2}', version = 2 WHERE session_id = %s",
                (tenant.session_id,),
            )
        fresh = admin.execute(
            "SELECT version FROM agent_sessions WHERE session_id = %s", (tenant.session_id,)
        ).fetchone()[0]
        admin.execute(
            "UPDATE agent_sessions SET context = '{\"n\": 2}', version = %s WHERE session_id = %s",
            (fresh + 1, tenant.session_id),
        )
        assert admin.execute(
            "SELECT context, version FROM agent_sessions WHERE session_id = %s", (tenant.session_id,)
        ).fetchone() == ({"n": 2}, 3)
