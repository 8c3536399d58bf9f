"""Backup verification on the faults stack: `pgbackrest verify` and the restore drill, passing and failing, as
the backup scheduler's metrics report them; and the live path repository unreachable -> WAL archiving
fails -> WALArchivingFailing and BackupRepositoryDown reach Alertmanager's webhook -> resolved.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from infra import backup, drill, repository
from infra.runner import SERVICE_USER
from tests.conftest import make_state_dir
from tests.monitoring.test_live import _webhook_alerts, get_json, vector, wait_for

pytestmark = pytest.mark.faults

ALERT_LIMIT_S = 180  # scaled `for:` (0.05) plus Alertmanager's scaled group waits, with room to spare
BACKUP_ALERTS = ["WALArchivingFailing", "BackupRepositoryDown"]


def make_repository_unreachable(stack) -> None:
    """The repository host stops answering: its pgBackRest TLS server (its own supervised service) stops."""
    stack.local._ctl("stop", "pgbackrest_repo", check=True)


def restore_repository(stack) -> None:
    """Undo make_repository_unreachable(): the repository host serves again."""
    stack.local._ctl("start", "pgbackrest_repo", check=True)


def metrics(stack) -> dict[str, float]:
    """The backup scheduler's metrics, by series as written (name and labels)."""
    url = f"http://{stack.settings.bind_address}:{stack.settings.backup_metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=30) as resp:
        text = resp.read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def scheduler_once(stack, job: str) -> subprocess.CompletedProcess:
    """The scheduler's own code path for one job, as its service runs it (same user, same arguments): verify
    on the repository host's schedule, drills in the database side's checks."""
    unit, user = ("backup_scheduler", repository.REPO_USER) if job == "verify" else ("backup_checks", SERVICE_USER)
    command = next(s.command for s in stack.local.services() if s.name == unit)
    return subprocess.run(
        ["runuser", "-u", user, "--", *shlex.split(command), "--once", job],
        capture_output=True,
        text=True,
        timeout=600,
        cwd="/",
    )


@pytest.fixture(scope="module")
def backed_up(fstack):
    """A fresh full backup for the drills to restore."""
    fstack.cli("backup", "--type", "full")
    return fstack


def test_scheduled_verify_passes_and_is_reported(backed_up):
    result = scheduler_once(backed_up, "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verify done" in result.stdout
    full = 'agentdb_backup_last_success_timestamp_seconds{type="full"}'
    # The repository is probed in the background (every few seconds): the fixture's backup shows by the next probe.
    m = wait_for("the full backup in the metrics", lambda: (m := metrics(backed_up)).get(full) and m, limit_s=60)
    assert m["agentdb_backup_verify_last_ok"] == 1
    assert time.time() - m["agentdb_backup_verify_last_timestamp_seconds"] < 120
    assert m[full] > time.time() - 600
    assert m["agentdb_backup_repository_up"] == 1


# What to corrupt in the restored copy, and what the drill must then say. The planner reads a B-tree's
# metapage (block 0) before counting a table's rows, so that corruption is met while counting and the
# table is named; a leaf page (block 1) of a filled table's primary key is met by amcheck only.
CORRUPTIONS = {
    "metapage": (
        "WHERE i.indrelid = 'sessions'::regclass AND i.indisprimary",
        0,
        r"drill: qlearning_db: counting the rows of public\.sessions failed: invalid page in block 0",
    ),
    "leaf": (
        "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE i.indisprimary AND n.nspname = 'public' AND c.relname <> 'alembic_version'"
        " AND pg_relation_size(i.indexrelid) >= 16384",
        1,
        r"drill: qlearning_db: amcheck: index public\.{index} is corrupt: .*invalid page in block 1",
    ),
}


def _corrupter(stack, where: str, block: int) -> tuple[str, Callable[[Path], None]]:
    """A qlearning primary key (the first `where` selects), and a function overwriting `block` of it in a copy."""
    found = stack.psql(
        "qlearning",
        f"SELECT i.indexrelid::regclass, pg_relation_filepath(i.indexrelid) FROM pg_index i {where} ORDER BY 1 LIMIT 1",
    ).strip()
    assert found, f"no qlearning index {where}"
    index, path = found.split("|")

    def corrupt(data: Path) -> None:
        with open(data / path, "r+b") as handle:
            handle.seek(block * 8192 + 100)
            handle.write(b"\xab" * 200)  # the page checksum no longer matches

    return index, corrupt


@pytest.mark.parametrize("what", list(CORRUPTIONS))
def test_drill_fails_on_a_corrupt_index_names_it_and_records_the_failure(backed_up, what):
    where, block, message = CORRUPTIONS[what]
    index, corrupt = _corrupter(backed_up, where, block)
    lines: list[str] = []
    result = drill.run_and_record(
        backup.config_path(backed_up.local),
        "agentdb",
        backup.pgpass_path(backed_up.local),
        backed_up.local.pg_bindir,
        backed_up.local.data,
        drill.status_dir(backed_up.local),
        lines.append,
        SERVICE_USER,
        after_restore=corrupt,
    )
    assert not result.ok
    assert re.search(message.format(index=re.escape(index)), result.error), result.error
    assert result.backup, "the failed drill does not say which backup it restored"
    assert any("removed" in line for line in lines), lines
    assert not list(backed_up.local.data.glob("drill-*")), "the scratch copy was left behind"
    m = metrics(backed_up)
    assert m["agentdb_backup_drill_last_ok"] == 0
    assert time.time() - m["agentdb_backup_drill_last_timestamp_seconds"] < 120


def test_drill_fails_on_a_repository_without_backups(backed_up):
    """The stack's configuration pointed at an empty repository: the drill names pgBackRest's refusal."""
    scratch = make_state_dir("agentdb-drill-")  # the service user must reach it, unlike pytest's tmp_path
    try:
        empty = scratch / "empty-repo"
        empty.mkdir()
        shutil.chown(empty, SERVICE_USER, SERVICE_USER)
        other = scratch / "pgbackrest.conf"
        conf = backup.config_path(backed_up.local).read_text()
        # Repository 1 becomes a local, empty path instead of the repository host.
        conf = re.sub(r"^repo1-(path|host[a-z-]*)=.*\n", "", conf, flags=re.M)
        other.write_text(conf.replace("[global]\n", f"[global]\nrepo1-path={empty}\n", 1))
        other.chmod(0o644)
        with pytest.raises(drill.DrillError, match=r"drill: pgbackrest restore failed") as failed:
            drill.drill(
                other,
                "agentdb",
                backup.pgpass_path(backed_up.local),
                backed_up.local.pg_bindir,
                scratch,
                lambda _: None,
                SERVICE_USER,
            )
        assert "stanza" in str(failed.value) or "backup set" in str(failed.value), failed.value
        assert not list(scratch.glob("drill-*")), "the scratch copy was left behind"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_drill_passes_through_the_cli_and_is_reported(backed_up, report):
    started = time.monotonic()
    result = backed_up.cli("drill")
    elapsed = time.monotonic() - started
    assert "drill: passed" in result.stdout, result.stdout
    for key in ("qlearning_db", "ai_agent_orchestrator", "afs", "agentic"):
        assert re.search(rf"drill: {key}: \d+ tables, \d+ rows; indexes pass amcheck", result.stdout), result.stdout
    m = metrics(backed_up)
    assert m["agentdb_backup_drill_last_ok"] == 1
    assert 0 < m["agentdb_backup_drill_last_duration_seconds"] <= elapsed
    assert m["agentdb_backup_drill_last_success_timestamp_seconds"] > time.time() - 120
    recorded = drill.backup_metrics.read(drill.status_dir(backed_up.local), "drill")
    report["restore_drill"] = {
        "what": "agentdb drill: latest backup restored to a scratch copy, row counts and amcheck, removed",
        "drill_s": recorded["duration_s"],
        "databases": recorded["databases"],
        "tables": recorded["tables"],
        "indexes_checked": recorded["indexes"],
        "volume": "what the faults stack holds (sample data, no 30-day volume)",
    }


def _generate_wal(stack) -> None:
    with psycopg.connect(stack.dsn(None), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS wal_filler (x bigint)")
        conn.execute("INSERT INTO wal_filler SELECT generate_series(1, 1000)")
        conn.execute("SELECT pg_switch_wal()")


def _firing(prometheus: str, alertname: str) -> list:
    return vector(prometheus, f'ALERTS{{alertname="{alertname}", alertstate="firing"}}')


def test_unreachable_repository_alerts_reach_the_webhook_and_resolve(fstack):
    s = fstack.settings
    prometheus = f"http://{s.bind_address}:{s.prometheus_port}"
    alertmanager = f"http://{s.bind_address}:{s.alertmanager_port}"
    webhook_log = fstack.state_dir / "logs" / "alerts.jsonl"
    resolved_before = {a: len(_webhook_alerts(webhook_log, a, "resolved")) for a in BACKUP_ALERTS}
    make_repository_unreachable(fstack)
    try:
        for alertname in BACKUP_ALERTS:

            def firing(alertname=alertname):
                _generate_wal(fstack)  # archiving only fails when there is something to archive
                return _firing(prometheus, alertname)

            wait_for(f"{alertname} firing in Prometheus", firing, limit_s=ALERT_LIMIT_S, every_s=2)
            wait_for(
                f"{alertname} in Alertmanager",
                lambda alertname=alertname: [
                    a
                    for a in get_json(f"{alertmanager}/api/v2/alerts")
                    if a["labels"].get("alertname") == alertname and a["status"]["state"] == "active"
                ],
                limit_s=ALERT_LIMIT_S,
            )
            delivered = wait_for(
                f"{alertname} firing notification in the webhook log",
                lambda alertname=alertname: _webhook_alerts(webhook_log, alertname, "firing"),
                limit_s=ALERT_LIMIT_S,
            )
            assert delivered[-1]["annotations"]["runbook_url"] == f"docs/runbooks/{alertname}.md"
        failed = vector(prometheus, "agentdb_archiver_failed_count")
        assert failed and float(failed[0]["value"][1]) > 0
    finally:
        restore_repository(fstack)

    def resolved() -> bool:
        _generate_wal(fstack)  # wakes the archiver, which retries the segments it could not push
        return all(len(_webhook_alerts(webhook_log, a, "resolved")) > resolved_before[a] for a in BACKUP_ALERTS)

    wait_for("WALArchivingFailing and BackupRepositoryDown resolved in the webhook log", resolved, ALERT_LIMIT_S, 2)
    assert all(_firing(prometheus, a) == [] for a in BACKUP_ALERTS)
    wait_for(
        "the archive backlog drained",
        lambda: float(vector(prometheus, "agentdb_archiver_ready_segments")[0]["value"][1]) == 0,
        limit_s=60,
    )
