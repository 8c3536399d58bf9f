"""The renderer: tuned values reach postgresql.conf, no password reaches a world-readable file."""

from pathlib import Path

import pytest

from infra import credentials as sec
from infra import render
from infra.settings import Settings, load

STATE = Path("/srv/agentdb-test")


@pytest.fixture(scope="module")
def rendered():
    settings = load("dev")
    secrets = {name: sec.generate_password() for name in sec.secret_names(settings)}
    layout = render.Layout.local(STATE, settings, 15)
    return settings, secrets, render.render(settings, secrets, layout)


def test_every_template_renders(rendered):
    _, _, files = rendered
    assert set(render.FILES) <= set(files)


def test_tuned_parameters_reach_postgresql_conf(rendered):
    settings, _, files = rendered
    conf = files["postgresql.conf"].content
    for name, value in render.postgres_parameters(settings).items():
        assert f"\n{name} = {value}\n" in conf, name


def test_max_connections_is_sized_for_the_pooler(rendered):
    settings, _, files = rendered
    expected = len(settings.databases) * (settings.default_pool_size + settings.reserve_pool_size)
    expected += render.EXTRA_CONNECTIONS
    assert f"\nmax_connections = {expected}\n" in files["postgresql.conf"].content


def test_one_pool_per_enabled_database(rendered):
    settings, _, files = rendered
    ini = files["pgbouncer.ini"].content
    for db in settings.enabled:
        assert f"\n{db.name} = host=" in ini
    assert f"max_prepared_statements = {settings.max_prepared_statements}" in ini
    assert "auth_type = scram-sha-256" in ini


def test_no_plaintext_password_in_any_file_but_the_0600_pgpass(rendered):
    _, secrets, files = rendered
    for name, file in files.items():
        for secret in secrets.values():
            if secret in file.content:
                assert file.mode == 0o600, f"{name} holds a password but is mode {oct(file.mode)}"
                assert name == "pgpass", name


def test_files_derived_from_secrets_are_0600(rendered):
    _, _, files = rendered
    for name in ("userlist.txt", "users.acl", "pgpass"):
        assert files[name].mode == 0o600


def test_hba_has_no_trust_and_no_md5(rendered):
    _, _, files = rendered
    hba = [line for line in files["pg_hba.conf"].content.splitlines() if line and not line.startswith("#")]
    assert hba and all(line.split()[-1] == "scram-sha-256" for line in hba)


def test_redis_default_user_is_off(rendered):
    _, _, files = rendered
    assert files["users.acl"].content.splitlines()[0] == "user default off"


def test_rendering_is_deterministic(rendered):
    settings, secrets, files = rendered
    again = render.render(settings, secrets, render.Layout.local(STATE, settings, 15))
    assert {k: v.content for k, v in again.items()} == {k: v.content for k, v in files.items()}


def test_scram_verifier_shape():
    verifier = sec.scram_sha256("alice", "secret")
    head, _, keys = verifier.partition("$")
    assert head == "SCRAM-SHA-256"
    iterations, salt_and_keys = keys.split(":", 1)
    assert iterations == "4096"
    assert sec.scram_sha256("alice", "secret") == verifier
    assert sec.scram_sha256("bob", "secret") != verifier


@pytest.mark.parametrize(
    ("overrides", "lines"),
    [
        (
            {},
            [
                "logging_collector = on",
                "log_destination = 'csvlog'",
                f"log_directory = '{STATE}/logs/postgresql'",
                "log_truncate_on_rotation = on",
                "log_rotation_age = 60min",
                "log_rotation_size = 102400kB",
                "log_min_duration_statement = 100",
                "log_lock_waits = on",
                "deadlock_timeout = 1000ms",
                "log_temp_files = 0",
                "log_checkpoints = on",
                "checkpoint_warning = 30s",
                "log_autovacuum_min_duration = 1000",
                "log_timezone = 'UTC'",
            ],
        ),
        (
            {
                "log_slow_statement_ms": 250,
                "log_lock_wait_ms": 200,
                "log_temp_files_kb": 10240,
                "log_autovacuum_ms": -1,
                "log_checkpoint_warning_s": 0,
                "log_rotation_age_min": 1440,
                "log_rotation_size_mb": 0,
            },
            [
                "log_min_duration_statement = 250",
                "deadlock_timeout = 200ms",
                "log_temp_files = 10240",
                "log_autovacuum_min_duration = -1",
                "checkpoint_warning = 0s",
                "log_rotation_age = 1440min",
                "log_rotation_size = 0kB",
            ],
        ),
    ],
    ids=["defaults", "overridden"],
)
def test_logging_thresholds_come_from_the_settings(overrides, lines):
    settings = Settings(**overrides)
    secrets = {name: "x" for name in sec.secret_names(settings)}
    conf = render.render(settings, secrets, render.Layout.local(STATE, settings, 15))["postgresql.conf"].content
    for line in lines:
        assert f"\n{line}\n" in conf, line


def test_docker_keeps_postgres_logs_on_the_data_volume():
    settings = Settings()
    layout = render.Layout.docker(settings)
    assert layout.postgres_logs.startswith(layout.postgres_data.rsplit("/", 1)[0] + "/")
    assert not layout.postgres_logs.startswith(layout.postgres_data + "/")
