"""PgBouncer's admin console: PAUSE, RECONNECT and RESUME of pools, with a deadline and a guaranteed RESUME.

A planned switchover pauses the read-write pools so that clients wait in PgBouncer instead of
failing while the leader changes (`infra/cluster.py`). PgBouncer's PAUSE has no timeout of its own
(it waits for every transaction using the pool to end), so this module waits for it with a
deadline on the client side and resumes the pool when the deadline passes.
"""

from __future__ import annotations

import contextlib
import select
import signal
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

import psycopg
from psycopg import pq

from infra import credentials as sec

if TYPE_CHECKING:
    from infra.runner import LocalStack

PAUSE_TIMEOUT_S = 10.0


class PauseError(RuntimeError):
    """PgBouncer could not pause or resume a pool: the message says which and why."""


def admin_dsn(stack: LocalStack) -> str:
    """libpq URL of the admin console (the `pgbouncer` database) as the stack's admin user."""
    s = stack.settings
    password = quote(stack.secrets()[sec.PGBOUNCER_ADMIN], safe="")
    return f"postgresql://{sec.PGBOUNCER_ADMIN}:{password}@{s.bind_address}:{s.pgbouncer_port}/pgbouncer"


class AdminConsole:
    """One connection to the admin console; commands go through the simple query protocol, the only one it speaks."""

    def __init__(self, stack: LocalStack):
        self.conn = psycopg.connect(admin_dsn(stack), connect_timeout=5, autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def command(self, text: str, timeout: float = 5) -> list[tuple]:
        """Run one admin command; raise TimeoutError when it has not finished within `timeout` seconds."""
        pgconn = self.conn.pgconn
        deadline = time.monotonic() + timeout
        try:
            pgconn.send_query(text.encode())
            while True:
                pgconn.consume_input()
                if not pgconn.is_busy():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(text)
                select.select([pgconn.socket], [], [], min(left, 0.5))
        except psycopg.OperationalError as exc:  # the console's connection broke
            raise PauseError(f"PgBouncer: {text}: {exc}") from None
        rows: list[tuple] = []
        error = None
        while (result := pgconn.get_result()) is not None:
            if result.status == pq.ExecStatus.FATAL_ERROR:
                error = (result.error_message or b"").decode().strip()
            elif result.status == pq.ExecStatus.TUPLES_OK:
                rows += [
                    tuple(
                        None if v is None else v.decode()
                        for v in (result.get_value(r, c) for c in range(result.nfields))
                    )
                    for r in range(result.ntuples)
                ]
        if error:
            raise PauseError(f"PgBouncer: {text}: {error}")
        return rows


def paused_databases(stack: LocalStack) -> dict[str, bool]:
    """PgBouncer database -> whether it is paused, from `SHOW DATABASES`."""
    console = AdminConsole(stack)
    try:
        conn = console.conn
        result = conn.pgconn.exec_(b"SHOW DATABASES")
        names = [(result.fname(i) or b"").decode() for i in range(result.nfields)]
        name, paused = names.index("name"), names.index("paused")
        return {result.get_value(r, name).decode(): result.get_value(r, paused) == b"1" for r in range(result.ntuples)}
    finally:
        console.close()


def _resume(stack: LocalStack, databases: list[str], attempts: int = 5) -> None:
    """RECONNECT and RESUME each database, on a fresh connection, retrying: a pool must never stay paused."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            console = AdminConsole(stack)
            try:
                for db in databases:
                    # Server connections opened before the pause may lead to the old leader: drop them, so
                    # every new one goes through HAProxy's read-write port as it routes now.
                    console.command(f"RECONNECT {db}")
                    try:
                        console.command(f"RESUME {db}")
                    except PauseError as exc:
                        if "not paused" not in str(exc):  # a retry after a RESUME that did go through
                            raise
            finally:
                console.close()
            return
        except (psycopg.Error, PauseError, TimeoutError, OSError) as exc:
            last = exc
            time.sleep(0.5)
    raise PauseError(
        f"PgBouncer did not resume {', '.join(databases)} ({last}); resume them by hand: "
        f"`RESUME <db>` on the admin console as {sec.PGBOUNCER_ADMIN}"
    )


@contextlib.contextmanager
def paused(stack: LocalStack, databases: list[str], timeout: float = PAUSE_TIMEOUT_S) -> Iterator[None]:
    """PAUSE the given PgBouncer databases for the block; RECONNECT and RESUME them however it ends.

    Clients of a paused database wait in PgBouncer (up to its `query_wait_timeout`) instead of
    failing. The pause is refused, and nothing stays paused, when a transaction keeps a pool busy
    longer than `timeout` seconds.
    """
    try:
        console = AdminConsole(stack)
    except psycopg.Error as exc:
        raise PauseError(f"PgBouncer's admin console did not answer, nothing was paused: {exc}") from None
    pausing: list[str] = []
    # A SIGTERM to the CLI must still resume the pools: turn it into an exception the finally sees.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        try:
            deadline = time.monotonic() + timeout
            for db in databases:
                pausing.append(db)
                console.command(f"PAUSE {db}", timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise PauseError(
                f"PgBouncer could not pause {pausing[-1]} within {timeout:.0f}s: a transaction still holds one of its"
                " server connections; the pools were resumed and nothing was changed"
            ) from None
        finally:
            console.close()
        yield
    finally:
        try:
            if pausing:
                _resume(stack, pausing)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
