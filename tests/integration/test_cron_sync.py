"""Cron jobs are synced by name: added, changed, and unscheduled when the file drops them."""

import pytest

from infra import cron
from infra.databases import DATABASES

DB = DATABASES["qlearning"]


def _jobs(stack):
    rows = stack.psql(
        None, "SELECT jobname, schedule, database, username FROM cron.job WHERE jobname LIKE 'qlearning-%'"
    )
    return {line.split("|")[0]: tuple(line.split("|")[1:]) for line in rows.splitlines()}


def test_sync_adds_changes_and_removes_by_name(stack, tmp_path):
    real = cron.jobs(DB, stack.settings)
    extra = tmp_path / "cron.yaml"
    lines = ["jobs:"]
    for job in real:
        lines += [f"  - name: {job.name}", f"    schedule: '{job.schedule}'", f"    command: {job.command!r}"]
    lines += ["  - name: qlearning-test-extra", "    schedule: '*/5 * * * *'", "    command: 'SELECT 1'"]
    extra.write_text("\n".join(lines) + "\n")
    try:
        assert cron.sync(stack.dsn(None), DB, stack.settings, extra) == ["+qlearning-test-extra"]
        assert _jobs(stack)["qlearning-test-extra"] == ("*/5 * * * *", DB.name, DB.owner)
        assert cron.sync(stack.dsn(None), DB, stack.settings, extra) == []  # idempotent
        extra.write_text(extra.read_text().replace("*/5 * * * *", "*/7 * * * *"))
        assert cron.sync(stack.dsn(None), DB, stack.settings, extra) == ["~qlearning-test-extra"]
    finally:
        assert cron.sync(stack.dsn(None), DB, stack.settings) == ["-qlearning-test-extra"]
    assert "qlearning-test-extra" not in _jobs(stack)
    assert set(_jobs(stack)) == {job.name for job in real}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "jobs:\n  - name: qlearning-x\n    schedule: '* * *'\n    command: SELECT 1\n",
            "not a cron expression",
        ),
        (
            "jobs:\n  - name: other-x\n    schedule: '* * * * *'\n    command: SELECT 1\n",
            "must be named qlearning-",
        ),
        ("jobs:\n  - name: qlearning-x\n    command: SELECT 1\n", "needs name, schedule and command"),
        (
            "jobs:\n  - {name: qlearning-x, schedule: '* * * * *', command: a}\n"
            "  - {name: qlearning-x, schedule: '* * * * *', command: b}\n",
            "declared twice",
        ),
    ],
)
def test_bad_cron_files_are_refused_with_the_file_and_job(tmp_path, text, message):
    from infra.settings import Settings

    path = tmp_path / "cron.yaml"
    path.write_text(text)
    with pytest.raises(cron.CronError, match=message):
        cron.jobs(DB, Settings(), path)


def test_migrate_rejects_an_unknown_database(stack):
    result = stack.cli("migrate", "--db", "nosuch", check=False)
    assert result.returncode == 2
    assert "unknown database 'nosuch'" in result.stderr


def test_migrate_down_and_up_through_the_cli(stack):
    from infra import migrations

    head = migrations.heads("afs")[0]
    previous = f"{int(head) - 1:04d}"
    down = stack.cli("migrate", "--db", "afs", "--down", previous)
    assert f"afs: {head} -> {previous}" in down.stdout
    assert migrations.current(stack.dsn("afs"), "afs") == previous
    up = stack.cli("migrate", "--db", "afs")
    assert f"afs: {previous} -> {head}" in up.stdout
    assert migrations.current(stack.dsn("afs"), "afs") == head
