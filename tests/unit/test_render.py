"""The renderer: tuned values reach postgresql.conf, no password reaches a world-readable file."""

from pathlib import Path

import pytest

from infra import credentials as sec
from infra import pgadmin, render
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


def test_no_plaintext_password_in_any_file_but_the_0600_pgpass_files(rendered):
    _, secrets, files = rendered
    for name, file in files.items():
        for secret in secrets.values():
            if secret in file.content:
                assert file.mode == 0o600, f"{name} holds a password but is mode {oct(file.mode)}"
                assert name in {"pgpass", pgadmin.PGPASS}, name


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


@pytest.fixture(scope="module")
def cluster():
    settings = load("prod")  # replicas 2, synchronousMode on
    secrets = {name: sec.generate_password() for name in sec.secret_names(settings)}
    layout = render.Layout.local(STATE, settings, 15)
    return settings, secrets, render.render(settings, secrets, layout)


def test_prod_is_a_three_node_synchronous_cluster(cluster):
    settings, _, _ = cluster
    assert (settings.replicas, settings.synchronous_mode) == (2, True)


@pytest.mark.parametrize("node", ["pg-1", "pg-2", "pg-3"])
def test_one_patroni_file_per_node_0600_with_its_own_name_ports_and_data(cluster, node):
    import yaml

    settings, _, files = cluster
    file = files[f"patroni-{node}.yml"]
    assert file.mode == 0o600
    doc = yaml.safe_load(file.content)
    index = int(node.split("-")[1])
    assert doc["name"] == node
    assert doc["postgresql"]["listen"].endswith(f":{settings.postgres_port + index - 1}")
    assert doc["restapi"]["listen"].endswith(f":{settings.patroni_port + index - 1}")
    assert doc["postgresql"]["data_dir"] == f"{STATE}/data/{node}"
    assert f"--pg1-path={STATE}/data/{node} " in doc["postgresql"]["parameters"]["archive_command"]
    assert len(doc["etcd3"]["hosts"]) == 3


def test_patroni_bootstrap_carries_the_tuning_and_the_cluster_settings(cluster):
    import yaml

    settings, _, files = cluster
    dcs = yaml.safe_load(files["patroni-pg-2.yml"].content)["bootstrap"]["dcs"]
    parameters = dcs["postgresql"]["parameters"]
    for name, value in render.postgres_parameters(settings).items():
        assert parameters[name] == value.strip("'"), name
    assert "pg_cron" in parameters["shared_preload_libraries"]
    assert parameters["cron.database_name"] == "postgres"
    assert not {"port", "listen_addresses", "hba_file", "archive_command"} & set(parameters)
    assert dcs["synchronous_mode"] is True
    assert dcs["maximum_lag_on_failover"] == settings.maximum_lag_on_failover
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["ttl"] >= dcs["loop_wait"] + 2 * dcs["retry_timeout"]


def test_cluster_hba_is_scram_and_lets_only_the_replication_user_replicate(cluster):
    import yaml

    _, _, files = cluster
    hba = yaml.safe_load(files["patroni-pg-1.yml"].content)["postgresql"]["pg_hba"]
    assert hba and all(line.split()[-1] == "scram-sha-256" for line in hba)
    assert {line.split()[2] for line in hba if line.split()[1] == "replication"} == {sec.REPLICATION_USER}


def test_haproxy_routes_by_patronis_health_endpoints(cluster):
    settings, _, files = cluster
    cfg = files["haproxy.cfg"].content
    assert f"bind 127.0.0.1:{settings.haproxy_port}\n    option httpchk OPTIONS /primary\n" in cfg
    assert f"option httpchk OPTIONS /replica?lag={settings.replica_max_lag}\n" in cfg
    for i in range(3):
        pg, rest = settings.postgres_port + i, settings.patroni_port + i
        assert cfg.count(f"server pg-{i + 1} 127.0.0.1:{pg} check port {rest}\n") == 2


def test_pgbouncer_has_a_primary_and_a_replica_pool_per_database(cluster):
    settings, _, files = cluster
    ini = files["pgbouncer.ini"].content
    for db in settings.enabled:
        assert f"\n{db.name} = host=127.0.0.1 port={settings.haproxy_port} dbname={db.name} " in ini
        assert f"\n{db.name}_replica = host=127.0.0.1 port={settings.haproxy_replica_port} dbname={db.name} " in ini


def test_cluster_passwords_stay_in_0600_files(cluster):
    _, secrets, files = cluster
    for name, file in files.items():
        if any(secret in file.content for secret in secrets.values()):
            assert file.mode == 0o600, name
            # The repository host's configuration holds the repository's passphrase (prod encrypts).
            assert name in {"pgpass", "pgbackrest-repo.conf"} or name.startswith("patroni-"), name


@pytest.mark.parametrize(
    ("job", "setting", "label", "names"),
    [
        ("patroni", "patroni_port", "node", ["pg-1", "pg-2", "pg-3"]),
        ("etcd", "etcd_client_port", "member", ["etcd-1", "etcd-2", "etcd-3"]),
        ("postgres", "postgres_exporter_port", "node", ["pg-1", "pg-2", "pg-3"]),
    ],
)
def test_prometheus_scrapes_every_node_and_member_with_its_label(cluster, job, setting, label, names):
    import yaml

    settings, _, files = cluster
    jobs = {j["job_name"]: j for j in yaml.safe_load(files["prometheus.yml"].content)["scrape_configs"]}
    base = getattr(settings, setting)
    # The cluster rules (rules/cluster.yml) name nodes and members by these labels.
    assert [(c["targets"], c["labels"]) for c in jobs[job]["static_configs"]] == [
        ([f"127.0.0.1:{base + i}"], {label: name}) for i, name in enumerate(names)
    ]


def test_a_single_postgresql_has_no_cluster_scrape_jobs(rendered):
    _, _, files = rendered
    assert "job_name: patroni" not in files["prometheus.yml"].content


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
