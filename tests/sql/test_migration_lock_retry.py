"""A migration that loses a lock to the live workload is tried again, and changes nothing meanwhile."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from infra import migrations

KEY = "qlearning"
BELOW = "0005"  # going down to it rewrites trajectories (0006) under ACCESS EXCLUSIVE


@pytest.fixture
def short_lock_timeout(monkeypatch):
    monkeypatch.setattr(migrations, "LOCK_TIMEOUT", "1s")
    monkeypatch.setattr(migrations, "LOCK_BACKOFF_S", 1.0)


def hold_lock(dsn: str, seconds: float, held: threading.Event) -> None:
    """A reader that keeps trajectories locked, as a long report query would."""
    with psycopg.connect(dsn) as conn:
        conn.execute("LOCK TABLE trajectories IN ACCESS SHARE MODE")
        held.set()
        time.sleep(seconds)
        conn.rollback()


def test_a_migration_blocked_past_its_lock_timeout_is_retried(stack, short_lock_timeout):
    dsn = stack.dsn(KEY)
    head = migrations.current(dsn, KEY)
    held = threading.Event()
    reader = threading.Thread(target=hold_lock, args=(dsn, 2.5, held))
    reader.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        migrations.downgrade(dsn, KEY, BELOW)
        waited = time.monotonic() - started
        assert migrations.current(dsn, KEY) == BELOW
        assert waited >= 1.0, "the first attempt should have waited out its lock timeout"
    finally:
        reader.join()
        migrations.upgrade(dsn, KEY)
    assert migrations.current(dsn, KEY) == head


def test_a_migration_still_blocked_after_every_attempt_fails_naming_the_lock(stack, short_lock_timeout):
    dsn = stack.dsn(KEY)
    head = migrations.current(dsn, KEY)
    held = threading.Event()
    reader = threading.Thread(target=hold_lock, args=(dsn, 8.0, held))
    reader.start()
    try:
        assert held.wait(10)
        with pytest.raises(migrations.MigrationError, match="lock timeout"):
            migrations.downgrade(dsn, KEY, BELOW)
        assert migrations.current(dsn, KEY) == head, "nothing may change when every attempt lost its lock"
    finally:
        reader.join()
    assert migrations.current(dsn, KEY) == head
