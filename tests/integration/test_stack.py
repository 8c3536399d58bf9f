"""The local runner end to end: idempotent up, env, bad input, port conflicts, down/up, destroy."""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import socket
import threading
import time

import asyncpg
import psycopg
import pytest

from tests.conftest import SERVICES, agentdb, make_state_dir, write_stack_file


def service_pids(stack) -> dict[str, str]:
    out = stack.local._ctl("status").stdout
    return {line.split()[0]: re.search(r"pid (\d+)", line).group(1) for line in out.splitlines() if "pid" in line}


def test_up_prints_every_service_healthy(stack):
    table = stack.up_output.split("SERVICE", 1)[1]
    for name in SERVICES:
        row = next(line for line in table.splitlines() if line.startswith(name + " "))
        assert row.split()[-2:] == ["RUNNING", "healthy"], row


def test_second_up_starts_nothing_and_keeps_every_process(stack):
    before = service_pids(stack)
    assert set(before) == set(SERVICES)
    again = stack.cli("up")
    assert "starting supervisord" not in again.stdout
    assert service_pids(stack) == before


def test_status_reports_every_service_healthy(stack):
    result = stack.cli("status")
    for name in SERVICES:
        assert re.search(rf"^{name}\s+\S+\s+RUNNING\s+healthy$", result.stdout, re.M), result.stdout


def test_env_prints_working_connection_strings(stack):
    exports = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in stack.cli("env").stdout.splitlines()
    )
    for db in stack.settings.enabled:
        url = exports[f"{db.key.upper()}_DATABASE_URL"]
        assert f":{stack.settings.pgbouncer_port}/" in url
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (db.app_role,)
    assert exports["REDIS_URL"].startswith("redis://")


def test_secrets_are_printed_only_by_env(stack):
    secrets = list(stack.local.secrets().values())
    for text in [stack.up_output, stack.cli("status").stdout, stack.cli("up").stdout]:
        for secret in secrets:
            assert secret not in text
    assert any(secret in stack.cli("env").stdout for secret in secrets)


def test_prepared_statements_work_through_pgbouncer_with_many_agents(stack):
    """asyncpg prepares every query; transaction pooling needs max_prepared_statements for that."""
    url = stack.dsn("qlearning", "app", "pgbouncer")

    async def agent(n: int) -> int:
        conn = await asyncpg.connect(url)
        try:
            total = 0
            stmt = await conn.prepare("SELECT $1::int * 2")
            for i in range(20):
                total += await conn.fetchval("SELECT $1::int + 1", i)
                total += await stmt.fetchval(n)
            return total
        finally:
            await conn.close()

    async def main() -> list[int]:
        return await asyncio.gather(*(agent(n) for n in range(40)))

    results = asyncio.run(main())
    assert results == [sum(range(1, 21)) + 20 * 2 * n for n in range(40)]


def test_psycopg_server_side_prepares_through_pgbouncer(stack):
    """psycopg prepares a query after 5 executions; each of 18 agents runs one 12 times."""
    url = stack.dsn("qlearning", "app", "pgbouncer")
    errors: list[BaseException] = []

    def agent(n: int) -> None:
        try:
            with psycopg.connect(url) as conn:
                for i in range(12):
                    assert conn.execute("SELECT %s::int + %s::int", (n, i)).fetchone() == (n + i,)
                    conn.commit()
        except BaseException as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(18)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_invalid_stack_file_exits_2_and_starts_nothing():
    state = make_state_dir("agentdb-bad-")
    stack_file = write_stack_file(state, "bad", {"agentdb:memoryMb": -5})
    result = agentdb(
        "up", "--stack", "bad", "--stack-file", str(stack_file), "--state-dir", str(state / "s"), check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "agentdb:memoryMb" in result.stderr and "greater than 0" in result.stderr
    assert not (state / "s").exists()


def test_port_in_use_names_service_and_port_and_leaves_nothing():
    state = make_state_dir("agentdb-port-")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        stack_file = write_stack_file(state, "busy", {"agentdb:pgbouncerPort": port})
        result = agentdb(
            "up",
            "--stack",
            "busy",
            "--stack-file",
            str(stack_file),
            "--state-dir",
            str(state / "s"),
            check=False,
        )
    finally:
        holder.close()
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"pgbouncer: port {port}" in result.stderr
    assert "agentdb:pgbouncerPort" in result.stderr
    assert not (state / "s").exists()


@pytest.fixture
def second_stack():
    state = make_state_dir("agentdb-second-")
    stack_file = write_stack_file(state, "second", {"agentdb:databases": ["qlearning"]})
    args = ["--stack", "second", "--stack-file", str(stack_file), "--state-dir", str(state / "s")]
    yield args, state / "s"
    agentdb("destroy", *args, check=False)


def test_a_second_stack_runs_beside_the_first_and_down_keeps_data(stack, second_stack):
    args, state_dir = second_stack
    agentdb("up", *args)
    from infra.runner import LocalStack
    from infra.settings import load

    local = LocalStack("second", load("second", path=next(state_dir.parent.glob("Pulumi.*.yaml"))), state_dir)
    local.psql(None, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
    agentdb("down", *args)
    assert not local.supervisor_running()
    status = agentdb("status", *args, check=False)
    assert status.returncode == 1 and "STOPPED" in status.stdout
    agentdb("up", *args)
    assert local.psql(None, "SELECT v FROM kept").strip() == "42"
    # the session stack was never disturbed
    assert stack.local.psql(None, "SELECT 1").strip() == "1"
    agentdb("destroy", *args)
    assert not state_dir.exists()


def test_destroy_leaves_no_pgbackrest_process_and_no_state():
    """Asynchronous archiving forks a detached archive-push; destroy waits for it, so nothing comes back."""
    from infra import repository
    from infra.runner import LocalStack
    from infra.settings import load

    state = make_state_dir("agentdb-destroy-")
    stack_file = write_stack_file(state, "destroyed")
    local = LocalStack("destroyed", load("destroyed", path=stack_file), state / "state")
    args = ["--stack", "destroyed", "--stack-file", str(stack_file), "--state-dir", str(local.state_dir)]
    try:
        agentdb("up", *args)
        # WAL to archive right up to the end: the archiver is busy when the stack goes down.
        local.psql(None, "CREATE TABLE churn AS SELECT g FROM generate_series(1, 200000) g; SELECT pg_switch_wal()")
        agentdb("destroy", *args)
        assert repository.stray_processes(local) == []
        time.sleep(2)
        assert not local.state_dir.exists()
    finally:
        agentdb("destroy", *args, check=False)
        shutil.rmtree(state, ignore_errors=True)
