"""A migration that loses a lock to the live workload is tried again, and changes nothing meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from infra import migrations

KEY = "qlearning"
BELOW = "0005"  # going down to it rewrites trajectories (0006) under ACCESS EXCLUSIVE


@pytest.fixture
def short_lock_timeout(monkeypatch):
    monkeypatch.setattr(migrations, "LOCK_TIMEOUT", "1s")
    monkeypatch.setattr(migrations, "LOCK_BACKOFF_S", 1.0)


def _hold_lock(dsn: str, seconds: float, held: threading.Event) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("LOCK TABLE trajectories IN ACCESS SHARE MODE")
        held.set()
        time.sleep(seconds)
        conn.rollback()


@contextmanager
def reader_holding_the_lock(dsn: str, seconds: float) -> Iterator[None]:
    """A reader that keeps trajectories locked for `seconds`, as a long report query would."""
    held = threading.Event()
    reader = threading.Thread(target=_hold_lock, args=(dsn, seconds, held))
    reader.start()
    try:
        assert held.wait(10)
        yield
    finally:
        reader.join()


def test_a_migration_blocked_past_its_lock_timeout_is_retried(stack, short_lock_timeout):
    dsn = stack.dsn(KEY)
    head = migrations.current(dsn, KEY)
    try:
        with reader_holding_the_lock(dsn, 2.5):
            started = time.monotonic()
            migrations.downgrade(dsn, KEY, BELOW)
            waited = time.monotonic() - started
        assert migrations.current(dsn, KEY) == BELOW
        assert waited >= 1.0, "the first attempt should have waited out its lock timeout"
    finally:
        migrations.upgrade(dsn, KEY)
    assert migrations.current(dsn, KEY) == head


def test_a_migration_still_blocked_after_every_attempt_fails_naming_the_lock(stack, short_lock_timeout):
    dsn = stack.dsn(KEY)
    head = migrations.current(dsn, KEY)
    with reader_holding_the_lock(dsn, 8.0):
        with pytest.raises(migrations.MigrationError, match="lock timeout"):
            migrations.downgrade(dsn, KEY, BELOW)
        assert migrations.current(dsn, KEY) == head, "nothing may change when every attempt lost its lock"
    assert migrations.current(dsn, KEY) == head
