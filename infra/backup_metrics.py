"""The backup scheduler's Prometheus metrics: the repository as pgBackRest reports it, verify and drill results.

Standard library only: the Docker realization serves these from the python image's own Python. At
each scrape `pgbackrest info` runs through the stack's rendered configuration, so what the metrics
say of the repository is what a restore would find, whatever the repository is (a posix path or a
repository host over TLS): reachable or not, and the newest backup of each type. The verify and
drill results are the JSON files `record()` writes into the status directory.

docs/monitoring.md lists every metric; the backup alerts (config/rules/backup.yml.j2) read them.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

KINDS = ("full", "diff", "incr")
JOBS = ("verify", "drill")
INFO_TIMEOUT_S = 20
PROBE_EVERY_S = 5  # how often the repository is probed; scrapes read the last result
# pgBackRest's stanza status codes that mean the repository answered: 0 ok, 2 no valid backups yet.
REACHABLE = {0, 2}
SINCE_FILE = "since.json"


def record(
    status_dir: Path, job: str, *, ok: bool, finished: float, duration_s: float, error: str = "", **extra
) -> None:
    """Write the result of `job` (verify or drill) where the metrics read it (atomically, 0644: no secret in it,
    and verify runs as the repository host's user while the metrics are served as the database side's)."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; one of {', '.join(JOBS)}")
    status_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    doc = {"ok": ok, "finished": finished, "duration_s": round(duration_s, 3), "error": error, **extra}
    previous = read(status_dir, job)
    doc["last_success"] = finished if ok else previous.get("last_success")
    tmp = status_dir / f".{job}.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle)
    os.replace(tmp, status_dir / f"{job}.json")


def read(status_dir: Path, job: str) -> dict:
    """The last recorded result of `job`, or {} when it never ran."""
    try:
        return json.loads((status_dir / f"{job}.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def since(status_dir: Path) -> float:
    """When this stack's backups began to be expected: the scheduler's first start, kept across restarts.

    The age alerts measure from here while the repository has no backup and no drill has run yet.
    """
    path = status_dir / SINCE_FILE
    try:
        return float(json.loads(path.read_text())["since"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError, ValueError):
        status_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        now = time.time()
        path.write_text(json.dumps({"since": now}))
        return now


def repository(config: str, stanza: str, env: dict[str, str]) -> tuple[bool, dict[str, float], int]:
    """(reachable, newest backup stop time per type, number of backups) from `pgbackrest info`."""
    try:
        result = subprocess.run(
            # A repository host that does not answer: pgBackRest retries until io-timeout (60 s by default).
            ["pgbackrest", f"--config={config}", f"--stanza={stanza}", "info", "--output=json", "--io-timeout=5"],
            env=env,
            capture_output=True,
            text=True,
            timeout=INFO_TIMEOUT_S,
        )
        doc = json.loads(result.stdout) if result.returncode == 0 else []
    except (subprocess.TimeoutExpired, json.JSONDecodeError, OSError):
        return False, {}, 0
    if not doc or any(s.get("status", {}).get("code") not in REACHABLE for s in doc):
        return False, {}, 0
    newest: dict[str, float] = {}
    count = 0
    for s in doc:
        for b in s.get("backup", []):
            count += 1
            newest[b["type"]] = max(newest.get(b["type"], 0.0), float(b["timestamp"]["stop"]))
    return True, newest, count


def exposition(
    config: str,
    stanza: str,
    env: dict[str, str],
    status_dir: Path,
    started: float,
    drill_enabled: bool = False,
    verify_dir: Path | None = None,
    probed: tuple[bool, dict[str, float], int] | None = None,
) -> str:
    """The metrics in Prometheus's text format (verify's results from `verify_dir`, when another process runs it;
    the repository as `probed` last, else probed now)."""
    reachable, newest, count = probed or repository(config, stanza, env)
    lines: list[str] = []

    def metric(name: str, help_: str, samples: list[tuple[str, float]]) -> None:
        lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} gauge"])
        lines.extend(f"{name}{labels} {value:.3f}" for labels, value in samples)

    metric(
        "agentdb_backup_repository_up", "1 when pgbackrest info reads the stanza from the repository", [("", reachable)]
    )
    metric("agentdb_backup_count", "Backups the repository holds", [("", count)] if reachable else [])
    metric(
        "agentdb_backup_last_success_timestamp_seconds",
        "Unix time the newest backup of each type ended",
        [(f'{{type="{k}"}}', newest[k]) for k in KINDS if k in newest],
    )
    metric(
        "agentdb_backup_expected_since_timestamp_seconds",
        "Unix time the scheduler first ran for this stack: backups and drills are expected from then",
        [("", since(status_dir))],
    )
    metric("agentdb_backup_scheduler_start_time_seconds", "Unix time the backup scheduler started", [("", started)])
    metric(
        "agentdb_backup_drill_enabled",
        "1 when this scheduler runs restore drills (it has PostgreSQL's binaries to start a restored copy)",
        [("", drill_enabled)],
    )
    for job in JOBS:
        doc = read((verify_dir or status_dir) if job == "verify" else status_dir, job)
        if not doc:
            continue
        metric(f"agentdb_backup_{job}_last_ok", f"1 when the last {job} passed", [("", bool(doc["ok"]))])
        metric(
            f"agentdb_backup_{job}_last_timestamp_seconds", f"Unix time the last {job} ended", [("", doc["finished"])]
        )
        metric(
            f"agentdb_backup_{job}_last_duration_seconds", f"How long the last {job} took", [("", doc["duration_s"])]
        )
        if doc.get("last_success"):
            metric(
                f"agentdb_backup_{job}_last_success_timestamp_seconds",
                f"Unix time the last passing {job} ended",
                [("", doc["last_success"])],
            )
    return "\n".join(lines) + "\n"


def serve(
    host: str,
    port: int,
    config: str,
    stanza: str,
    env: dict[str, str],
    status_dir: Path,
    drill_enabled: bool = False,
    verify_dir: Path | None = None,
) -> ThreadingHTTPServer:
    """Serve /metrics on host:port from a daemon thread; return the server."""
    started = time.time()
    since(status_dir)
    # The repository is probed in the background, so a scrape never waits for an unreachable repository
    # host (pgBackRest's retries outlast Prometheus' scrape timeout, and the alert would see no series).
    last: list[tuple[bool, dict[str, float], int]] = []

    def probe_forever() -> None:
        while True:
            result = repository(config, stanza, env)
            last[:] = [result]
            time.sleep(PROBE_EVERY_S)

    threading.Thread(target=probe_forever, name="probe", daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            if self.path not in ("/metrics", "/"):
                self.send_error(404)
                return
            probed = last[0] if last else None  # before the first probe ends, this scrape probes itself
            body = exposition(config, stanza, env, status_dir, started, drill_enabled, verify_dir, probed).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass  # a scrape every few seconds would drown the scheduler's own log

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
