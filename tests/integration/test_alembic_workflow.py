"""The seeds' migration workflow (seed 001 "Development Workflow", seed 004 "Commands").

`agentdb revision` writes a new revision; it is applied, rolled back and applied again through the
alembic CLI (`alembic -n agentic upgrade head` / `downgrade -1`) and through `agentdb migrate`, which
share one code path: the owner transaction and the cron sync after it.

The new revision lives in a copy of sql/agentic in a temporary directory, with a copy of alembic.ini
beside it that $ALEMBIC_CONFIG points both CLIs at: nothing is written under sql/. Only the agentic
database of the session stack is touched, and it ends at its head with its cron jobs in place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra import cron, migrations
from infra.databases import DATABASES, SQL_ROOT
from tests.conftest import REPO

KEY = "agentic"
DB = DATABASES[KEY]
PROBE = "alembic_workflow_probe"
MESSAGE = "Add the alembic workflow probe"
UP_SQL = f"CREATE TABLE {PROBE} (id BIGINT PRIMARY KEY, note TEXT NOT NULL);\n"
DOWN_SQL = f"DROP TABLE {PROBE};\n"


def _sql_tree() -> dict[str, bytes]:
    return {str(p.relative_to(SQL_ROOT)): p.read_bytes() for p in sorted(SQL_ROOT.rglob("*")) if p.is_file()}


def _run(argv: list[str], ini: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, migrations.ALEMBIC_CONFIG_ENV: str(ini), **(extra_env or {})}
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def alembic(stack, ini: Path, *args: str) -> subprocess.CompletedProcess:
    """`alembic -n agentic ...` in the repository root, pointed at the session stack with -x arguments."""
    where = [f"stack={stack.local.name}", f"stack_file={stack.stack_file}", f"state_dir={stack.state_dir}"]
    xargs = [arg for pair in (("-x", w) for w in where) for arg in pair]
    return _run([sys.executable, "-m", "alembic", *xargs, "-n", KEY, *args], ini)


def agentdb(stack, ini: Path, *args: str) -> subprocess.CompletedProcess:
    """`agentdb <verb> --db agentic ...` against the session stack."""
    verb, *rest = args
    where = ["--stack", stack.local.name, "--stack-file", str(stack.stack_file), "--state-dir", str(stack.state_dir)]
    return _run([sys.executable, "-m", "infra.cli", verb, *where, "--db", KEY, *rest], ini)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@dataclass
class NewRevision:
    ini: Path
    head: str  # the repository's head, which the new revision follows
    revision: str
    py: Path
    output: str

    @property
    def up(self) -> Path:
        return self.py.with_suffix(".up.sql")

    @property
    def down(self) -> Path:
        return self.py.with_suffix(".down.sql")


@pytest.fixture()
def copy_ini(tmp_path) -> Iterator[Path]:
    """alembic.ini and sql/agentic copied to a temporary directory; sql/ itself must stay as it was."""
    before = _sql_tree()
    shutil.copy(REPO / "alembic.ini", tmp_path / "alembic.ini")
    shutil.copytree(DB.sql_dir, tmp_path / "sql" / KEY)
    yield tmp_path / "alembic.ini"
    assert _sql_tree() == before, "the test wrote under sql/"


@pytest.fixture()
def new_revision(stack, copy_ini) -> Iterator[NewRevision]:
    """`agentdb revision --db agentic -m ...` in the copy; afterwards the database is back at its head."""
    head = migrations.heads(KEY)[0]
    output = ok(_run([sys.executable, "-m", "infra.cli", "revision", "--db", KEY, "-m", MESSAGE], copy_ini))
    revision = f"{int(head) + 1:04d}"
    py = copy_ini.parent / "sql" / KEY / "versions" / f"{revision}_add_the_alembic_workflow_probe.py"
    try:
        yield NewRevision(copy_ini, head, revision, py, output)
    finally:  # the session stack's agentic database ends where it started, whatever happened
        if migrations.current(stack.dsn(KEY), KEY) != head:
            ok(agentdb(stack, copy_ini, "migrate", "--down", head))
        cron.sync(stack.dsn(None), DB, stack.settings)
    assert migrations.current(stack.dsn(KEY), KEY) == head


def test_revision_writes_the_next_number_with_empty_sql_files_beside_it(new_revision):
    rev = new_revision
    assert sorted(p.name for p in rev.py.parent.glob(f"{rev.revision}_*")) == [
        rev.py.with_suffix(".down.sql").name,
        rev.py.name,
        rev.py.with_suffix(".up.sql").name,
    ]
    assert all(str(path) in rev.output for path in (rev.py, rev.up, rev.down))
    text = rev.py.read_text()
    assert f'revision = "{rev.revision}"' in text
    assert f'down_revision = "{rev.head}"' in text
    assert text.startswith(f'"""{MESSAGE}"""')
    assert 'run_sql(__file__, "up")' in text
    assert rev.up.read_text() == rev.down.read_text() == ""


def test_revision_after_a_revision_takes_the_next_number(new_revision):
    ok(_run([sys.executable, "-m", "infra.cli", "revision", "--db", KEY, "-m", "then another"], new_revision.ini))
    following = f"{int(new_revision.revision) + 1:04d}"
    py = new_revision.py.parent / f"{following}_then_another.py"
    assert f'down_revision = "{new_revision.revision}"' in py.read_text()


def _probe_exists(stack) -> bool:
    return stack.psql(KEY, f"SELECT to_regclass('public.{PROBE}') IS NOT NULL").strip() == "t"


def _drop_a_cron_job(stack) -> str:
    name = cron.jobs(DB, stack.settings)[0].name
    stack.psql(None, f"SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = '{name}'")
    return name


def _job_scheduled(stack, name: str) -> bool:
    return stack.psql(None, f"SELECT count(*) FROM cron.job WHERE jobname = '{name}'").strip() == "1"


# (upgrade, downgrade) arguments per CLI.
CLIS = {
    "alembic": (alembic, ("upgrade", "head"), ("downgrade", "-1")),
    "agentdb": (agentdb, ("migrate",), ("migrate", "--down", "-1")),
}


@pytest.mark.parametrize("cli", list(CLIS))
def test_a_new_revision_is_applied_rolled_back_and_applied_again(stack, new_revision, cli):
    run, upgrade, downgrade = CLIS[cli]
    rev = new_revision
    dsn = stack.dsn(KEY)

    # The fresh revision, with its empty SQL files, applies and rolls back as it is.
    ok(run(stack, rev.ini, *upgrade))
    assert migrations.current(dsn, KEY) == rev.revision
    ok(run(stack, rev.ini, *downgrade))
    assert migrations.current(dsn, KEY) == rev.head

    rev.up.write_text(UP_SQL)
    rev.down.write_text(DOWN_SQL)
    job = _drop_a_cron_job(stack)
    out = ok(run(stack, rev.ini, *upgrade))
    assert f"{KEY}: {rev.head} -> {rev.revision}" in out
    assert migrations.current(dsn, KEY) == rev.revision
    assert _probe_exists(stack)
    # The owner transaction: the new table is the owner's, and the app role got its default privileges.
    assert stack.psql(KEY, f"SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = '{PROBE}'").strip() == (
        DB.owner
    )
    assert stack.psql(KEY, f"SELECT has_table_privilege('{DB.app_role}', '{PROBE}', 'INSERT')").strip() == "t"
    assert _job_scheduled(stack, job), "the cron sync did not run after the migration"

    ok(run(stack, rev.ini, *downgrade))
    assert migrations.current(dsn, KEY) == rev.head
    assert not _probe_exists(stack)

    ok(run(stack, rev.ini, *upgrade))
    assert migrations.current(dsn, KEY) == rev.revision
    assert _probe_exists(stack)


def test_alembic_current_and_history_show_the_new_revision(stack, new_revision):
    rev = new_revision
    assert ok(alembic(stack, rev.ini, "current")).split() == [rev.head]
    ok(alembic(stack, rev.ini, "upgrade", "head"))
    assert ok(alembic(stack, rev.ini, "current")).split() == [rev.revision, "(head)"]
    history = ok(alembic(stack, rev.ini, "history")).splitlines()
    assert history[0] == f"{rev.head} -> {rev.revision} (head), {MESSAGE}"
    assert history[-1].startswith("<base> -> 0001,")


def test_the_alembic_cli_finds_the_stack_from_the_environment(stack, copy_ini):
    env = {"AGENTDB_STACK": stack.local.name, "AGENTDB_STACK_FILE": str(stack.stack_file)}
    env["AGENTDB_STATE_DIR"] = str(stack.state_dir)
    result = _run([sys.executable, "-m", "alembic", "-n", KEY, "current"], copy_ini, env)
    assert ok(result).split() == [migrations.heads(KEY)[0], "(head)"]


BAD_ALEMBIC = [
    (["upgrade", "head"], "no -n was given: name a database with -n, one of qlearning, orchestrator, afs, agentic"),
    (["-n", "nope", "upgrade", "head"], "alembic.ini has no section [nope]: name a database with -n"),
    (["-n", "nope", "history"], "alembic.ini has no section [nope]"),
    (["-x", "state_dir={empty}", "-n", KEY, "upgrade", "head"], "stack dev is not running"),
    (["-x", "colour=blue", "-n", KEY, "current"], "-x colour: unknown"),
    (["-n", KEY, "upgrade", "head", "--sql"], "--sql (offline mode) is not supported"),
    (["-n", KEY, "revision", "--autogenerate", "-m", "x"], f'`agentdb revision --db {KEY} -m "message"`'),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ALEMBIC)
def test_bad_alembic_input_is_refused_with_a_clear_error(copy_ini, tmp_path, argv, message):
    argv = [arg.replace("{empty}", str(tmp_path / "no-stack")) for arg in argv]
    result = _run([sys.executable, "-m", "alembic", *argv], copy_ini)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "no-stack").exists()


BAD_REVISION = [
    (["--db", "nope", "-m", "x"], "--db: unknown database 'nope'"),
    (["--db", KEY, "-m", "!!!"], "-m: the message must say what the revision does"),
    (["--db", KEY, "-m", 'say "hi"'], "without quotes or backslashes"),
    (["--db", KEY, "-m", "two\nlines"], "one line"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_REVISION)
def test_bad_revision_input_is_refused_and_nothing_is_written(copy_ini, argv, message):
    versions = copy_ini.parent / "sql" / KEY / "versions"
    before = sorted(p.name for p in versions.iterdir())
    result = _run([sys.executable, "-m", "infra.cli", "revision", *argv], copy_ini)
    assert result.returncode == 2
    assert message in result.stderr
    assert sorted(p.name for p in versions.iterdir()) == before
