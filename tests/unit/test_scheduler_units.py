"""Our scheduler's pure parts: pg_cron's schedules, its file, and where it appears in the topology."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from infra import scheduler, topology
from infra.databases import DATABASES
from infra.settings import Settings

T0 = dt.datetime(2026, 12, 5, 5, 0, 30, tzinfo=dt.UTC)  # a Saturday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 seconds", T0 + dt.timedelta(seconds=2)),
        ("59 seconds", T0 + dt.timedelta(seconds=59)),
        ("1 second", T0 + dt.timedelta(seconds=1)),
        ("*/5 * * * *", dt.datetime(2026, 12, 5, 5, 5, tzinfo=dt.UTC)),
        ("0 3 * * 0", dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC)),  # Sunday is 0, as in cron and pg_cron
        ("15 1 * * *", dt.datetime(2026, 12, 6, 1, 15, tzinfo=dt.UTC)),
        ("0 * * * *", dt.datetime(2026, 12, 5, 6, 0, tzinfo=dt.UTC)),
    ],
)
def test_next_run_follows_pg_crons_schedules_in_utc(text, expected):
    assert scheduler.Schedule(text).next_after(T0) == expected


@pytest.mark.parametrize("text", ["60 seconds", "0 seconds", "soon", "* * *", "61 * * * *", "2 minutes"])
def test_a_schedule_pg_cron_would_refuse_is_refused(text):
    with pytest.raises(ValueError, match="neither a cron expression"):
        scheduler.Schedule(text)


@pytest.mark.parametrize(("mode", "present"), [("local", False), ("external", True)])
def test_the_scheduler_runs_only_against_an_external_server(mode, present):
    units = topology.build(Settings(postgres_mode=mode)).of_kind("scheduler")
    assert [(u.name, u.health.kind, u.port, u.files) for u in units] == (
        [("scheduler", "process", 0, ("scheduler.json",))] if present else []
    )


def test_config_has_every_enabled_databases_jobs_and_no_password(tmp_path):
    settings = Settings(databases=["qlearning", "afs"])
    text, pgpass = scheduler.write_config("postgresql://admin:s3cr%3At@10.0.0.5:5433/postgres", settings)
    assert "s3cr" not in text
    assert pgpass == "10.0.0.5:5433:*:admin:s3cr\\:t\n"  # pgpass escapes ':'
    doc = json.loads(text)
    assert [(d["key"], d["owner"], len(d["jobs"])) for d in doc["databases"]] == [
        ("qlearning", "qlearning_owner", 2),
        ("afs", "afs_owner", 3),
    ]
    path = tmp_path / "scheduler.json"
    path.write_text(text)
    config = scheduler.read_config(path)
    assert "host=10.0.0.5" in config.conninfo and "password" not in config.conninfo
    assert config.admin_database == "postgres"
    assert config.databases[1].jobs[0].name == "afs-purge-query-logs"


def test_job_file_limits_the_config_to_its_database(tmp_path):
    jobs = tmp_path / "cron.yaml"
    jobs.write_text("jobs:\n  - name: afs-tick\n    schedule: '3 seconds'\n    command: SELECT 1\n")
    text, _ = scheduler.write_config("postgresql://a:b@127.0.0.1:5432/postgres", Settings(), {"afs": jobs})
    doc = json.loads(text)
    assert doc["databases"] == [
        {
            "key": "afs",
            "name": DATABASES["afs"].name,
            "owner": "afs_owner",
            "jobs": [{"name": "afs-tick", "schedule": "3 seconds", "command": "SELECT 1"}],
        }
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not a scheduler configuration"),
        ('{"conninfo": "", "databases": [{"key": "afs"}]}', "not a scheduler configuration"),
        (
            '{"conninfo": "", "databases": [{"key": "afs", "name": "afs", "owner": "o",'
            ' "jobs": [{"name": "afs-x", "schedule": "often", "command": "SELECT 1"}]}]}',
            "neither a cron expression",
        ),
    ],
)
def test_a_bad_config_is_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "scheduler.json"
    path.write_text(content)
    with pytest.raises(scheduler.ConfigError, match=f"{path}: .*{message}"):
        scheduler.read_config(path)
