"""The `agentdb` command: stand a stack up locally, migrate, seed, and inspect it."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from infra.databases import REPO_ROOT
from infra.settings import SettingsError

EXIT_BAD_INPUT = 2


def _progress(message: str) -> None:
    print(message, flush=True)


def open_stack(name: str, stack_file: str | None = None, state_dir: str | None = None):
    """The LocalStack `--stack`, `--stack-file` and `--state-dir` name (also used by the alembic CLI)."""
    from infra.runner import LocalStack
    from infra.settings import load

    settings = load(name, path=Path(stack_file) if stack_file else None)
    return LocalStack(name, settings, Path(state_dir) if state_dir else None)


def _stack(args: argparse.Namespace):
    return open_stack(args.stack, args.stack_file, args.state_dir)


def cmd_up(args: argparse.Namespace) -> int:
    from infra.runner import format_status

    stack = _stack(args)
    start = time.monotonic()
    rows = stack.up(progress=_progress)
    print()
    print(format_status(rows))
    unhealthy = [r.name for r in rows if r.health != "healthy"]
    print(
        f"\nstack {stack.name} up in {time.monotonic() - start:.1f}s; `agentdb env --stack {stack.name}` prints "
        "the connection strings"
    )
    if stack.settings.tools:
        s = stack.settings
        print(f"pgAdmin: http://{s.bind_address}:{s.pgadmin_port} (its login and password: `agentdb env`)")
    return 1 if unhealthy else 0


def cmd_down(args: argparse.Namespace) -> int:
    _stack(args).down(progress=_progress)
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    _stack(args).destroy(progress=_progress)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from infra.runner import format_status

    stack = _stack(args)
    rows = stack.status()
    print(format_status(rows))
    whole = all(r.health == "healthy" for r in rows)
    if stack.supervisor_running():
        import psycopg

        from infra import scheduler

        print()
        try:
            print(scheduler.describe(stack.dsn(None), stack.settings))
        except psycopg.Error as exc:
            print(f"CRON JOBS: cannot tell, PostgreSQL did not answer: {exc}")
            whole = False
    if stack.topology.clustered and stack.supervisor_running():
        from infra import cluster

        print()
        print(cluster.format_cluster(stack))
        whole = whole and not cluster.problems(stack)
    return 0 if whole else 1


def _cluster_stack(args: argparse.Namespace):
    stack = _stack(args)
    if not stack.topology.clustered:
        raise SettingsError(f"stack {stack.name} has no replicas (agentdb:replicas: 0): nothing to switch over to")
    require_running(stack)
    return stack


def cmd_switchover(args: argparse.Namespace) -> int:
    from infra import cluster

    cluster.switchover(_cluster_stack(args), args.to, progress=_progress)
    return 0


def cmd_failover(args: argparse.Namespace) -> int:
    from infra import cluster

    cluster.failover(_cluster_stack(args), args.to, progress=_progress)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    stack = _stack(args)
    if not stack.secrets_dir.exists():
        print(
            f"error: stack {stack.name} has no secrets yet; run `agentdb up --stack {stack.name}`",
            file=sys.stderr,
        )
        return 1
    for key, value in stack.env().items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    stack = _stack(args)
    names = [args.service] if args.service else sorted(p.stem for p in stack.logs.glob("*.log"))
    for name in names:
        print(f"==> {name} <==")
        print(stack.log_tail(name, args.lines))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from infra import report

    stack = _stack(args)
    since = report.parse_since(args.since) if args.since else None
    out = (
        Path(args.out)
        if args.out
        else Path("reports") / f"pgbadger-{stack.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}.html"
    )
    report.output_format(out)
    start = time.monotonic()
    written = report.build(Path(stack.layout.postgres_logs), out, since, progress=_progress)
    print(f"report written to {written} in {time.monotonic() - start:.1f}s")
    return 0


def stack_databases(stack, key: str | None):
    """The databases `--db KEY` selects in `stack` (every enabled one for None); bad keys are refused."""
    from infra.databases import DATABASES

    if key is None:
        return stack.settings.enabled
    if key not in DATABASES:
        raise SettingsError(f"--db: unknown database {key!r}; known: {', '.join(DATABASES)}")
    if key not in stack.settings.databases:
        raise SettingsError(f"--db: database {key!r} is not enabled in stack {stack.name} (agentdb:databases)")
    return [DATABASES[key]]


def cmd_migrate(args: argparse.Namespace) -> int:
    from infra import baseline, migrations

    stack = _stack(args)
    for db in stack_databases(stack, args.db):
        admin = stack.dsn(db)
        before = migrations.current(admin, db.key)
        if args.down:
            migrations.downgrade(admin, db.key, args.down)
        elif args.to:
            migrations.upgrade(admin, db.key, args.to, migrations.runtime_values(db.key, stack.settings))
        else:
            baseline.migrate_and_schedule(stack, db, _progress)
        after = migrations.current(admin, db.key)
        print(f"{db.key}: {before or 'base'} -> {after or 'base'}")
        if args.down or args.to:
            baseline.schedule(stack, db, _progress)
    return 0


def cmd_revision(args: argparse.Namespace) -> int:
    from infra import migrations
    from infra.databases import DATABASES

    if args.db not in DATABASES:
        raise SettingsError(f"--db: unknown database {args.db!r}; known: {', '.join(DATABASES)}")
    try:
        paths = migrations.new_revision(args.db, args.message)
    except migrations.MigrationError as exc:
        raise SettingsError(str(exc)) from None
    for path in paths:
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from infra.seeds import SeedError, seed

    stack = _stack(args)
    (db,) = stack_databases(stack, args.db)
    scale = 1.0 if args.sample else args.scale * _volume_days(args.volume) / 30.0
    start = time.monotonic()
    try:
        seed(stack.dsn(db), db, sample=args.sample, scale=scale, seed=args.seed)
    except SeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{db.key}: seeded in {time.monotonic() - start:.1f}s")
    return 0


def _volume_days(text: str) -> float:
    if not text.endswith("d") or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise SettingsError(f"--volume: {text!r} must be a number of days such as 30d")
    return float(text[:-1])


def cmd_backup(args: argparse.Namespace) -> int:
    from infra import backup

    stack = _stack(args)
    require_running(stack)
    start = time.monotonic()
    where = backup.repo_path(stack) if args.repo == 1 else f"repository {args.repo} (agentdb:backupRepos)"
    print(f"taking a {args.type} backup of stack {stack.name} into {where}", flush=True)
    try:
        taken = backup.backup(stack, args.type, progress=_progress, repo=args.repo)
    except backup.TargetError as exc:
        raise SettingsError(str(exc)) from None
    print(
        f"backup {taken.label} ({taken.kind}) done in {time.monotonic() - start:.1f}s: "
        f"{taken.size_bytes / 2**20:.1f} MiB of data, {taken.repo_size_bytes / 2**20:.1f} MiB in the repository"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from infra import backup

    stack = _stack(args)
    require_running(stack)
    start = time.monotonic()
    try:
        target = backup.parse_timestamp(args.to)
        aside = backup.restore(stack, target, progress=_progress)
    except backup.TargetError as exc:
        raise SettingsError(str(exc)) from None
    kept = (
        f"the previous data directory is kept at {aside} (for a cluster, every node's)"
        if aside.exists()
        else "there was no data directory to keep (a lost machine)"
    )
    print(f"restored stack {stack.name} to {target.isoformat()} in {time.monotonic() - start:.1f}s; {kept}")
    return 0


def cmd_drill(args: argparse.Namespace) -> int:
    from infra import drill

    stack = _stack(args)
    require_running(stack)
    print(f"restore drill of stack {stack.name}: the latest backup into a scratch copy, checked, removed", flush=True)
    drill.run_local(stack, progress=_progress)
    return 0


def require_running(stack) -> None:
    """Refuse, naming the stack and how to start it, when its PostgreSQL is not running."""
    from infra.runner import StackError

    if not stack.supervisor_running():
        raise StackError(f"stack {stack.name} is not running; start it with `agentdb up --stack {stack.name}`")


def cmd_load(args: argparse.Namespace) -> int:
    from loadtests import load

    if args.worker:
        if not args.master_host:
            print("error: --worker needs --master-host (the machine running `agentdb load --master`)", file=sys.stderr)
            return 2
        return load.run_worker(load.load_config(_stack(args)), args.master_host, args.master_port)
    if args.master_host:
        print("error: --master-host is for --worker; the master listens with --master", file=sys.stderr)
        return 2
    if args.master and args.workers is None:
        print("error: --master needs --workers N, the number of workers that will connect", file=sys.stderr)
        return 2
    seed_scale = None if args.no_seed else args.seed_scale
    return load.main(
        _stack(args),
        args.users,
        args.duration,
        args.targets,
        args.report_dir,
        seed_scale,
        args.workers,
        args.capacity_duration,
        args.capacity_operations,
        ("0.0.0.0", args.master_port) if args.master else None,
    )


def cmd_settings_schema(args: argparse.Namespace) -> int:
    import yaml

    from infra.settings import pulumi_config_schema

    print(yaml.safe_dump({"config": pulumi_config_schema()}, sort_keys=False, width=120), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default dev)")
    common.add_argument("--stack-file", help="read this stack file instead of Pulumi.<stack>.yaml")
    common.add_argument("--state-dir", help="state directory (default .stack/<stack>/)")

    parser = argparse.ArgumentParser(prog="agentdb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", parents=[common], help="start the stack (idempotent) and apply the baseline").set_defaults(
        func=cmd_up
    )
    sub.add_parser("down", parents=[common], help="stop every service, keep the data").set_defaults(func=cmd_down)
    sub.add_parser("destroy", parents=[common], help="stop and delete .stack/<stack>/").set_defaults(func=cmd_destroy)
    sub.add_parser("status", parents=[common], help="service, address, state, health").set_defaults(func=cmd_status)
    switch = sub.add_parser(
        "switchover", parents=[common], help="planned leader change; waits until writes go through PgBouncer"
    )
    switch.add_argument("--to", help="the node to promote (default: the sync standby, else the least lag)")
    switch.set_defaults(func=cmd_switchover)
    fail = sub.add_parser("failover", parents=[common], help="forced leader change, also without a healthy leader")
    fail.add_argument("--to", help="the node to promote (default: the sync standby, else the least lag)")
    fail.set_defaults(func=cmd_failover)
    sub.add_parser("env", parents=[common], help="application connection strings as shell exports").set_defaults(
        func=cmd_env
    )
    logs = sub.add_parser("logs", parents=[common], help="the tail of each service's log")
    logs.add_argument("service", nargs="?")
    logs.add_argument("-n", "--lines", type=int, default=50)
    logs.set_defaults(func=cmd_logs)

    report_cmd = sub.add_parser("report", parents=[common], help="pgBadger report of PostgreSQL's logs")
    report_cmd.add_argument("--since", help="only entries after this: 30m, 6h, 2d ago or an ISO 8601 timestamp (UTC)")
    report_cmd.add_argument(
        "--out", help="write here; .html or .json (default reports/pgbadger-<stack>-<timestamp>.html)"
    )
    report_cmd.set_defaults(func=cmd_report)

    migrate = sub.add_parser("migrate", parents=[common], help="upgrade to head (or --to / --down) and sync cron")
    migrate.add_argument("--db", help="one database key (default: every enabled database)")
    group = migrate.add_mutually_exclusive_group()
    group.add_argument("--to", help="upgrade to this revision")
    group.add_argument("--down", help="downgrade to this revision (base for empty)")
    migrate.set_defaults(func=cmd_migrate)

    revision = sub.add_parser("revision", help="write the next revision: NNNN_slug.py with empty .up.sql and .down.sql")
    revision.add_argument("--db", required=True, help="database key")
    revision.add_argument("-m", "--message", required=True, help="what the revision does (names the file)")
    revision.set_defaults(func=cmd_revision)

    seed = sub.add_parser("seed", parents=[common], help="load sample or volume data into one database")
    seed.add_argument("--db", required=True)
    seed.add_argument("--sample", action="store_true", help="the document's sample data set")
    seed.add_argument("--volume", default="30d", help="volume data for this many days (default 30d)")
    seed.add_argument("--scale", type=float, default=1.0, help="multiply the volume")
    seed.add_argument("--seed", type=int, default=42, help="random seed, for reproducible data")
    seed.set_defaults(func=cmd_seed)

    backup_cmd = sub.add_parser("backup", parents=[common], help="take a pgBackRest backup now")
    backup_cmd.add_argument("--type", choices=["full", "diff", "incr"], default="incr", help="default incr")
    backup_cmd.add_argument(
        "--repo", type=int, default=1, help="1, the repository host's (default), or 2.. for agentdb:backupRepos"
    )
    backup_cmd.set_defaults(func=cmd_backup)

    restore = sub.add_parser(
        "restore", parents=[common], help="restore to a moment into a fresh data directory and start it"
    )
    restore.add_argument("--to", required=True, help="ISO 8601 timestamp, UTC unless it has a zone")
    restore.set_defaults(func=cmd_restore)

    sub.add_parser(
        "drill",
        parents=[common],
        help="restore the latest backup into a scratch copy, check row counts and indexes, remove it",
    ).set_defaults(func=cmd_drill)

    load_cmd = sub.add_parser("load", parents=[common], help="headless Locust against the seeds' targets")
    load_cmd.add_argument("--users", type=int, default=18, help="simulated agents (default 18, the seeds')")
    load_cmd.add_argument("--duration", default="60s", help="mixed phase: 60, 60s or 2m (default 60s)")
    load_cmd.add_argument(
        "--capacity-duration", default="10s", help="capacity phase: time per operation alone (default 10s)"
    )
    load_cmd.add_argument(
        "--capacity-operations", help="comma-separated operations for the capacity phase (default: all with a target)"
    )
    load_cmd.add_argument(
        "--workers",
        type=int,
        help="Locust worker processes (default: this machine's CPUs minus agentdb:cpus, at least 1)",
    )
    distributed = load_cmd.add_mutually_exclusive_group()
    distributed.add_argument(
        "--master", action="store_true", help="listen on all interfaces for --workers workers started elsewhere"
    )
    distributed.add_argument(
        "--worker", action="store_true", help="run one worker here for `agentdb load --master` on --master-host"
    )
    load_cmd.add_argument("--master-host", help="with --worker: the machine running `agentdb load --master`")
    load_cmd.add_argument(
        "--master-port", type=int, default=5557, help="with --master or --worker: the master's port (default 5557)"
    )
    load_cmd.add_argument("--targets", help="target profile YAML (default loadtests/targets.yaml)")
    load_cmd.add_argument("--report-dir", help="write the report here (default reports/<timestamp>/)")
    seeding = load_cmd.add_mutually_exclusive_group()
    seeding.add_argument(
        "--seed-scale",
        type=float,
        default=1.0,
        help="volume to seed first where a database has none (default 1.0, the 30-day volume)",
    )
    seeding.add_argument("--no-seed", action="store_true", help="refuse instead of seeding a database without data")
    load_cmd.set_defaults(func=cmd_load)

    sub.add_parser("settings-schema", help="print Pulumi.yaml's config block from the settings model").set_defaults(
        func=cmd_settings_schema
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from infra.backup import BackupError
    from infra.cluster import ClusterError
    from infra.cron import CronError
    from infra.drill import DrillError
    from infra.external import ExternalError
    from infra.migrations import MigrationError
    from infra.report import ReportError
    from infra.runner import StackError
    from infra.tools import ToolError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT if "already in use" in str(exc) else 1
    except (ToolError, CronError, ReportError, ExternalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (MigrationError, BackupError, ClusterError, DrillError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        import psycopg

        if not isinstance(exc, psycopg.Error):
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
