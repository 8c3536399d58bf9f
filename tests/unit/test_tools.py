"""infra.tools against this host's real binaries: PostgreSQL, PgBouncer and the other servers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra import tools

# The servers the local stack runs; grafana-server is optional, so it is tested only for its error.
STACK_BINARIES = [
    "redis-server",
    "prometheus",
    "promtool",
    "prometheus-postgres-exporter",
    "prometheus-redis-exporter",
    "prometheus-alertmanager",
    "supervisord",
    "pgbackrest",
    "etcd",  # the cluster's (agentdb:replicas > 0)
    "haproxy",
]


@pytest.fixture(scope="module")
def pgbouncer():
    return tools.ensure_pgbouncer(progress=lambda line: None)


def test_postgres_bindir_is_the_newest_with_pg_cron_and_partman():
    bindir = tools.postgres_bindir()
    major = tools.postgres_major(bindir)
    assert bindir == tools.POSTGRES_LIB / str(major) / "bin"
    assert major >= 14
    extensions = tools.POSTGRES_SHARE / str(major) / "extension"
    assert (extensions / "pg_cron.control").exists()
    assert (extensions / "pg_partman.control").exists()
    newer = [int(p.name) for p in tools.POSTGRES_LIB.glob("*") if p.name.isdigit() and int(p.name) > major]
    for other in newer:
        assert not (tools.POSTGRES_SHARE / str(other) / "extension" / "pg_cron.control").exists()


def test_postgres_major_matches_the_postgres_binary():
    bindir = tools.postgres_bindir()
    output = subprocess.run([bindir / "postgres", "--version"], capture_output=True, text=True).stdout
    # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    assert output.split()[2].split(".")[0] == str(tools.postgres_major(bindir))


def test_postgres_bindir_too_new_a_major_names_what_to_install():
    with pytest.raises(tools.ToolError, match=r"no PostgreSQL 99 or newer.*postgresql-NN-cron"):
        tools.postgres_bindir(min_major=99)


def test_ensure_pgbouncer_gives_1_21_or_newer(pgbouncer):
    assert tools.version_of(pgbouncer) >= (1, 21)
    assert tools.pgbouncer_binary() == pgbouncer


def test_version_parsing_of_the_real_pgbouncer_output(pgbouncer):
    output = subprocess.run([pgbouncer, "--version"], capture_output=True, text=True, check=True).stdout
    # First line "PgBouncer 1.24.1"; later lines carry libevent's and OpenSSL's versions.
    name, version = output.splitlines()[0].split()
    assert name == "PgBouncer"
    assert tools.parse_version(output) == tuple(int(x) for x in version.split("."))
    assert tools.version_of(pgbouncer) == tools.parse_version(output)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("PgBouncer 1.18.0\nlibevent 2.1.12-stable\n", (1, 18, 0)),
        ("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", (15, 18)),
        ("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64\n", (7, 0, 15)),
        ("4.3.0\n", (4, 3, 0)),
    ],
)
def test_parse_version_takes_the_first_dotted_number(output, expected):
    assert tools.parse_version(output) == expected


def test_parse_version_without_a_number_is_a_tool_error():
    with pytest.raises(tools.ToolError, match="no version number"):
        tools.parse_version("usage: something\n", source="something")


def test_pgbouncer_binary_too_new_a_minimum_says_how_to_build():
    with pytest.raises(tools.ToolError, match=r"PgBouncer 99\.0 or newer.*ensure-pgbouncer"):
        tools.pgbouncer_binary(min_version=(99, 0))


@pytest.mark.parametrize("name", STACK_BINARIES)
def test_stack_binary_is_found_and_reports_a_version(name):
    path = tools.binary(name)
    assert path.name == name
    assert tools.version_of(path)


def test_patroni_is_the_pinned_4x_and_finds_psycopg():
    import importlib.metadata

    from patroni import psycopg as patroni_psycopg

    assert importlib.metadata.version("patroni").startswith("4.")
    import psycopg

    # Patroni takes psycopg 3 (the venv's) when psycopg2 is absent; without either it cannot run.
    assert patroni_psycopg.OperationalError is psycopg.OperationalError


def test_unknown_binary_is_a_tool_error_naming_it():
    with pytest.raises(tools.ToolError, match="not-a-real-tool not found"):
        tools.binary("not-a-real-tool")


def test_trixie_sources_are_source_packages_only():
    text = tools.trixie_sources_text(tools.host_mirror())
    types = [line for line in text.splitlines() if line.startswith("Types:")]
    assert types == ["Types: deb-src"]
    assert "Suites: trixie" in text.splitlines()
    if tools.TRIXIE_SOURCES.exists():
        assert tools.TRIXIE_SOURCES.read_text() == text


@pytest.fixture(scope="module")
def pgvector():
    """pgvector in the host's PostgreSQL, as `make deps` leaves it."""
    return tools.ensure_pgvector(progress=lambda line: None)


@pytest.fixture
def empty_server(tmp_path):
    """A relocated pg_config with empty library and extension directories: a server without pgvector."""
    bindir = tools.postgres_bindir()
    lib, extensions = tools.server_extension_dirs(bindir)
    copy = tmp_path / bindir.relative_to("/")
    copy.mkdir(parents=True)
    shutil.copy2(bindir / "pg_config", copy / "pg_config")
    for directory in (lib, extensions):
        (tmp_path / directory.relative_to("/")).mkdir(parents=True, exist_ok=True)
    return copy


def test_ensure_pgvector_installs_where_the_server_looks(pgvector):
    bindir = tools.postgres_bindir()
    pkglibdir, sharedir = tools.pg_config(bindir, "--pkglibdir", "--sharedir")
    assert (Path(pkglibdir) / "vector.so").is_file()
    assert (Path(sharedir) / "extension" / "vector.control").is_file()
    assert (Path(sharedir) / "extension" / f"vector--{pgvector}.sql").is_file()
    assert tools.parse_version(pgvector) >= (0, 8)
    assert tools.installed_pgvector(bindir) == pgvector


def test_ensure_pgvector_a_second_time_does_nothing(pgvector):
    lib, extensions = tools.server_extension_dirs(tools.postgres_bindir())
    files = [lib / "vector.so", extensions / "vector.control"]
    before = [f.stat().st_mtime_ns for f in files]
    lines: list[str] = []
    assert tools.ensure_pgvector(progress=lines.append) == pgvector
    assert lines == []
    assert [f.stat().st_mtime_ns for f in files] == before


def test_pgvector_build_is_cached_per_postgresql_major(pgvector):
    major = tools.postgres_major(tools.postgres_bindir())
    cached = tools.TOOLS_DIR / f"pgvector-{pgvector}-pg{major}"
    assert (cached / "lib" / "vector.so").is_file()
    assert sorted(p.name for p in (cached / "extension").iterdir()) == sorted(
        p.name for p in tools.server_extension_dirs(tools.postgres_bindir())[1].glob("vector*")
    )


def test_pg_config_follows_a_relocated_installation(empty_server, tmp_path):
    lib, extensions = tools.server_extension_dirs(empty_server)
    assert lib.is_relative_to(tmp_path) and extensions.is_relative_to(tmp_path)
    assert tools.installed_pgvector(empty_server) is None


def test_install_pgvector_from_the_cache_then_again_changes_nothing(pgvector, empty_server):
    major = tools.postgres_major(tools.postgres_bindir())
    cached = tools.TOOLS_DIR / f"pgvector-{pgvector}-pg{major}"
    lines: list[str] = []
    assert tools.install_pgvector(cached, empty_server, progress=lines.append) == pgvector
    assert len(lines) == 1 and "installing" in lines[0]
    lib, extensions = tools.server_extension_dirs(empty_server)
    assert (lib / "vector.so").read_bytes() == (cached / "lib" / "vector.so").read_bytes()
    assert not list(extensions.glob(".*agentdb-new"))
    lines.clear()
    assert tools.install_pgvector(cached, empty_server, progress=lines.append) == pgvector
    assert lines == []


def test_install_pgvector_repairs_a_damaged_library(pgvector, empty_server):
    major = tools.postgres_major(tools.postgres_bindir())
    cached = tools.TOOLS_DIR / f"pgvector-{pgvector}-pg{major}"
    tools.install_pgvector(cached, empty_server, progress=lambda line: None)
    lib, _ = tools.server_extension_dirs(empty_server)
    (lib / "vector.so").write_bytes(b"truncated")
    tools.install_pgvector(cached, empty_server, progress=lambda line: None)
    assert (lib / "vector.so").read_bytes() == (cached / "lib" / "vector.so").read_bytes()


def test_a_server_missing_the_install_script_has_no_pgvector(pgvector, empty_server):
    major = tools.postgres_major(tools.postgres_bindir())
    cached = tools.TOOLS_DIR / f"pgvector-{pgvector}-pg{major}"
    tools.install_pgvector(cached, empty_server, progress=lambda line: None)
    _, extensions = tools.server_extension_dirs(empty_server)
    (extensions / f"vector--{pgvector}.sql").unlink()
    assert tools.installed_pgvector(empty_server) is None


def test_ensure_pgvector_without_pg_config_is_a_tool_error_naming_it(tmp_path):
    with pytest.raises(tools.ToolError, match=rf"cannot run {tmp_path}/pg_config"):
        tools.ensure_pgvector(tmp_path, progress=lambda line: None)
