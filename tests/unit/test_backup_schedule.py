"""The backup scheduler's calendar and its metrics' exposition (no stack needed)."""

from __future__ import annotations

import datetime as dt

import pytest

from infra import backup_metrics
from infra.backup_scheduler import next_job


def _jobs(start: dt.datetime, days: int, drill_every_days: int | None) -> list[tuple[dt.datetime, str]]:
    jobs, now = [], start
    while now < start + dt.timedelta(days=days):
        slot, job = next_job(now, drill_every_days)
        jobs.append((slot, job))
        now = slot
    return jobs


START = dt.datetime(2026, 12, 5, 0, 30, tzinfo=dt.UTC)


def test_every_day_has_a_backup_then_a_verify():
    jobs = _jobs(START, 14, None)
    for day in range(1, 14):
        date = (START + dt.timedelta(days=day)).date()
        today = [(slot.hour, job) for slot, job in jobs if slot.date() == date]
        kind = "full" if date.weekday() == 6 else "diff"
        assert today == [(1, kind), (2, "verify")], date


@pytest.mark.parametrize("every", [1, 3, 7, 30])
def test_drills_come_every_interval_at_three(every):
    drills = [slot for slot, job in _jobs(START, 3 * every + 1, every) if job == "drill"]
    assert len(drills) >= 3
    assert all(slot.hour == 3 and slot.minute == 0 for slot in drills)
    assert {b - a for a, b in zip(drills, drills[1:], strict=False)} == {dt.timedelta(days=every)}


def test_no_drill_without_postgresql_binaries():
    assert all(job != "drill" for _, job in _jobs(START, 30, None))


def test_an_unreachable_repository_is_reported_down(tmp_path):
    config = tmp_path / "pgbackrest.conf"
    config.write_text(
        f"[global]\nrepo1-path={tmp_path / 'missing'}\nlog-level-console=off\n[agentdb]\npg1-path=/nonexistent\n"
    )
    text = backup_metrics.exposition(str(config), "agentdb", {}, tmp_path / "status", 0.0)
    assert "agentdb_backup_repository_up 0.000" in text
    assert "agentdb_backup_last_success_timestamp_seconds{" not in text


def test_recorded_results_become_metrics(tmp_path):
    status = tmp_path / "status"
    backup_metrics.record(status, "drill", ok=True, finished=1000.0, duration_s=12.5)
    backup_metrics.record(status, "drill", ok=False, finished=2000.0, duration_s=3.0, error="drill: boom")
    text = backup_metrics.exposition(str(tmp_path / "none.conf"), "agentdb", {}, status, 0.0, drill_enabled=True)
    assert "agentdb_backup_drill_last_ok 0.000" in text
    assert "agentdb_backup_drill_last_timestamp_seconds 2000.000" in text
    assert "agentdb_backup_drill_last_duration_seconds 3.000" in text
    # The last passing drill is kept across a failure: the age alert measures from it.
    assert "agentdb_backup_drill_last_success_timestamp_seconds 1000.000" in text
    assert "agentdb_backup_drill_enabled 1.000" in text
    assert "agentdb_backup_verify_last_ok" not in text  # never ran: no series, not a zero


def test_an_unknown_job_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown job 'backup'"):
        backup_metrics.record(tmp_path, "backup", ok=True, finished=0.0, duration_s=0.0)
