"""The Q-learning write paths before and after issue 15 (revisions 0007 to 0009), in one run.

Two stacks with the dev stack's sizes: "before" holds the qlearning schema at 0006 (today's head when
the issue was filed, `agentdb migrate --down 0006`), "after" at head; both get the same 30-day volume
(same random seed). pgbench then runs each write path through PgBouncer with 18 clients, before and
after interleaved round by round, so that the other work on this 2-core machine falls on both alike.
A path that 0007 adds a function for runs today's script on "before" and the function on "after";
the others run the same script on both. `python -m loadtests.writes` runs only this part and
replaces its section of docs/benchmarks.md; `make bench` runs it as part of the whole baseline.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from infra import tools
from infra.seeds import qlearning as qvol
from loadtests.stack import BenchStack

CLIENTS = 18  # the seeds' 18 agents
SECONDS = int(os.environ.get("AGENTDB_BENCH_WRITES_S", "10"))
ROUNDS = int(os.environ.get("AGENTDB_BENCH_WRITES_ROUNDS", "2"))
BEFORE_REVISION = "0006"
HEADING = "## Write paths before and after issue 15 (revisions 0007 to 0009)"
# The section's earlier headings, replaced like the current one.
OLD_HEADINGS = ("## Write paths before and after issue 15 (revisions 0007 and 0008)",)
# PostgreSQL 15 backends report their table counters when a transaction ends at most once a second,
# and an idle one 10 s later; PgBouncer keeps the server sessions open after pgbench leaves, so the
# HOT counts of a run are only complete after that.
STATS_SETTLE_S = 11
# Seeds 000 and 001: throughput per second, or p99 in ms for the batches.
GOALS = {
    "qlearning.upsert_q_value": ("tps", 5000),
    "qlearning.trajectory_insert": ("tps", 3000),
    "qlearning.upsert_batch_100": ("p99_ms", 50),
    "qlearning.trajectory_batch_10": ("p99_ms", 30),
}
RATIO_GOAL = 1.3
READS = {"qlearning.get_best_action"}  # measured beside the writes, held to no ratio


@dataclass
class Run:
    """One pgbench run: throughput, latency from pgbench's per-transaction log, q_values' updates
    and inserts, what the active backends waited for (share of samples, "CPU" when not waiting), and
    the server's WAL bytes and MultiXact SLRU page accesses during the run."""

    tps: float
    avg_ms: float
    p99_ms: float
    failed: int
    updates: int
    hot_updates: int
    inserts: int = 0
    waits: dict[str, float] = field(default_factory=dict)
    wal_bytes: int = 0
    multixact_pages: int = 0
    wal_fpi: int = 0


WAIT_SAMPLE_S = 0.05
# What the server wrote and how often it touched MultiXact pages: a tuple locked FOR KEY SHARE by
# several transactions at once (the foreign keys' check) gets a MultiXact and a WAL record per new
# member set. Both counters are cluster-wide, and each benchmark stack has its own cluster.
SERVER_COUNTERS = (
    "SELECT (SELECT wal_bytes::bigint FROM pg_stat_wal),"
    " (SELECT sum(blks_zeroed + blks_hit + blks_read + blks_written)::bigint FROM pg_stat_slru"
    "  WHERE name IN ('MultiXactOffset', 'MultiXactMember')),"
    " (SELECT wal_fpi FROM pg_stat_wal)"
)


class WaitSampler(threading.Thread):
    """Samples pg_stat_activity every WAIT_SAMPLE_S while a run lasts: which wait each active client
    backend of the database is in, counted as "type:event" ("CPU" when it waits for nothing)."""

    def __init__(self, admin_dsn: str) -> None:
        super().__init__(daemon=True)
        self.admin_dsn = admin_dsn
        self.counts: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            while not self.stop.wait(WAIT_SAMPLE_S):
                rows = conn.execute(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity"
                    " WHERE datname = current_database() AND backend_type = 'client backend'"
                    " AND state = 'active' AND pid <> pg_backend_pid()"
                ).fetchall()
                self.counts.update(r[0] for r in rows)

    def shares(self) -> dict[str, float]:
        """Each wait's share of all samples, largest first."""
        total = sum(self.counts.values()) or 1
        return {k: round(v / total, 3) for k, v in self.counts.most_common()}


def _sha(kind: str, *parts: str) -> str:
    return f"encode(sha256(convert_to('{kind}:' || {' || chr(58) || '.join(parts)}, 'UTF8')), 'hex')"


def scripts(agents: list[str]) -> dict[str, tuple[str, str]]:
    """Operation -> (script on the 0006 schema, script on 0007) over the volume's keys."""
    counts = qvol.volume_counts(1.0)
    states = -(-counts["q_values"] // len(agents) // qvol.ACTIONS_PER_STATE)
    agent = "('{" + ",".join(agents) + "}'::text[])[(:a)::int + 1]"
    head = f"\\set a random(0, {len(agents) - 1})\n\\set s random(0, {states - 21})\n"
    state, action = _sha("state", "(:a)::text", "(:s)::text"), _sha("action", "(:a)::text", "(:act)::text")
    steps = {
        "actions_taken": "jsonb_build_object('step', k, 'action', 'generate_unit_test')",
        "states_visited": "jsonb_build_object('step', k, 'tests_run', 10 * k)",
        "step_rewards": "jsonb_build_object('step', k, 'reward', 0.5)",
    }
    arrays = {c: f"(SELECT jsonb_agg({e} ORDER BY k) FROM generate_series(1, 10) k)" for c, e in steps.items()}
    reward_state = _sha("state", "(:a)::text", "((:s)::int + k)::text")
    reward_action = _sha("action", "(:a)::text", "(k % 5)::text")
    # Today's way: the trajectory and its 10 rewards in one statement (what `make bench` measured).
    trajectory = (
        "WITH t AS (INSERT INTO trajectories (agent_type, task_id, actions_taken, states_visited, step_rewards,"
        f" total_reward, success, completed_at) VALUES ({agent}, 'bench-' || (:s)::text,"
        f" {arrays['actions_taken']}, {arrays['states_visited']}, {arrays['step_rewards']}, 5.0, true, now())"
        " RETURNING trajectory_id)"
        " INSERT INTO rewards (agent_type, trajectory_id, state_hash, action_hash, reward_value, reward_type)"
        f" SELECT {agent}, t.trajectory_id, {reward_state}, {reward_action}, 0.5, 'immediate'"
        " FROM t, generate_series(1, 10) k;\n"
    )
    document = (
        f"jsonb_build_object('agent_type', {agent}, 'task_id', 'bench-' || (:s)::text,"
        + "".join(f" '{c}', {a}," for c, a in arrays.items())
        + " 'total_reward', 5.0, 'success', true, 'completed_at', now(), 'rewards',"
        f" (SELECT jsonb_agg(jsonb_build_object('state_hash', {reward_state}, 'action_hash', {reward_action},"
        " 'reward_value', 0.5, 'reward_type', 'immediate') ORDER BY k) FROM generate_series(1, 10) k))"
    )
    pair_state = _sha("state", "(:a)::text", "((:s)::int + g / 5)::text")
    pair_action = _sha("action", "(:a)::text", "(g % 5)::text")
    upsert = head + f"\\set act random(0, {qvol.ACTIONS_PER_STATE - 1})\n"
    upsert += f"SELECT upsert_q_value({agent}, {state}, NULL, {action}, NULL, random() * 2 - 1);\n"
    lookup = head + f"SELECT * FROM get_best_action({agent}, {state});\n"
    return {
        # The read the write paths must not slow down: the same script on both sides.
        "qlearning.get_best_action": (lookup, lookup),
        "qlearning.upsert_q_value": (upsert, upsert),
        "qlearning.trajectory_insert": (head + trajectory, head + trajectory),
        "qlearning.trajectory_insert_fn": (
            head + trajectory,
            head + f"SELECT count(*) FROM insert_trajectories(jsonb_build_array({document}));\n",
        ),
        # 100 pairs of one agent: 20 states x 5 actions from a random start.
        "qlearning.upsert_batch_100": (
            head + f"SELECT count(upsert_q_value({agent}, {pair_state}, NULL, {pair_action}, NULL,"
            " random() * 2 - 1)) FROM generate_series(0, 99) AS g;\n",
            head + f"SELECT count(*) FROM upsert_q_values({agent},"
            f" ARRAY(SELECT {pair_state} FROM generate_series(0, 99) AS g),"
            f" ARRAY(SELECT {pair_action} FROM generate_series(0, 99) AS g),"
            " ARRAY(SELECT random() * 2 - 1 FROM generate_series(0, 99) AS g));\n",
        ),
        "qlearning.trajectory_batch_10": (
            head + "BEGIN;\n" + trajectory * 10 + "COMMIT;\n",
            head + f"SELECT count(*) FROM insert_trajectories((SELECT jsonb_agg({document})"
            " FROM generate_series(1, 10) AS t));\n",
        ),
    }


def _counters(admin_dsn: str) -> tuple[int, ...]:
    """q_values' updates, HOT updates and inserts; the server's WAL bytes, MultiXact page accesses and
    full-page images."""
    with psycopg.connect(admin_dsn) as conn:
        table = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd, n_tup_ins FROM pg_stat_user_tables WHERE relname = 'q_values'"
        ).fetchone()
        return (*table, *conn.execute(SERVER_COUNTERS).fetchone())


def run(dsn: str, admin_dsn: str, script: str, seconds: int = SECONDS, settle: float = 1.0) -> Run:
    """pgbench `script` with CLIENTS clients for `seconds`, logging every transaction for the p99;
    `settle` seconds afterwards for the backends' counters (STATS_SETTLE_S when the script updates)."""
    binary = tools.postgres_bindir() / "pgbench"
    with tempfile.TemporaryDirectory(prefix="agentdb-writes-") as tmp:
        path = Path(tmp) / "script.sql"
        path.write_text(script)
        before = _counters(admin_dsn)
        sampler = WaitSampler(admin_dsn)
        sampler.start()
        args = [str(binary), "-n", "-c", str(CLIENTS), "-j", "2", "-T", str(seconds), "-M", "prepared"]
        args += ["-f", str(path), "--log", f"--log-prefix={tmp}/tx", dsn]
        try:
            result = subprocess.run(args, capture_output=True, text=True, cwd=tmp)
        finally:
            sampler.stop.set()
            sampler.join()
        out = result.stdout + result.stderr
        if result.returncode != 0 or "tps = " not in out:
            raise RuntimeError(f"pgbench failed ({result.returncode}):\n{out[-2000:]}")
        # Columns: client, transaction, elapsed microseconds, script, epoch, microseconds.
        latencies = sorted(
            int(line.split()[2]) / 1000 for log in Path(tmp).glob("tx.*") for line in log.read_text().splitlines()
        )
    time.sleep(settle)
    upd, hot, ins, wal, mx, fpi = (b - a for a, b in zip(before, _counters(admin_dsn), strict=True))
    tps = float(out.split("tps = ")[1].split()[0])
    failed = next((int(line.split(":")[1].split()[0]) for line in out.splitlines() if "number of failed" in line), 0)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    avg = statistics.fmean(latencies) if latencies else 0.0
    return Run(tps, avg, p99, failed, upd, hot, ins, sampler.shares(), wal, mx, fpi)


def prepare(stack: BenchStack, revision: str | None) -> None:
    """Stand `stack` up with qlearning at `revision` (None: head) and the 30-day volume, vacuumed."""
    stack.cli("up")
    if revision:
        stack.cli("migrate", "--db", "qlearning", "--down", revision)
    stack.cli("seed", "--db", "qlearning", "--volume", "30d")
    stack.local.psql("qlearning", "VACUUM ANALYZE")


def measure(before: BenchStack, after: BenchStack, rounds: int = ROUNDS, seconds: int = SECONDS) -> dict:
    """Each write path, before then after, `rounds` times; the result keeps every round."""
    agents = after.local.psql("qlearning", "SELECT agent_type FROM agent_types ORDER BY agent_type").split()
    sides = {"before": before, "after": after}
    out: dict = {"rounds": rounds, "seconds": seconds, "clients": CLIENTS, "before_revision": BEFORE_REVISION}
    out["revisions"] = {
        name: s.local.psql("qlearning", "SELECT version_num FROM alembic_version").strip() for name, s in sides.items()
    }
    out["ops"] = {op: {"before": [], "after": []} for op in scripts(agents)}
    for r in range(rounds):
        for op, pair in scripts(agents).items():
            for side, script in zip(("before", "after"), pair, strict=True):
                s = sides[side]
                settle = STATS_SETTLE_S if "upsert" in op else 1.0
                dsn = s.local.dsn("qlearning", "app", "pgbouncer")
                res = run(dsn, s.local.dsn("qlearning"), script, seconds, settle)
                out["ops"][op][side].append(asdict(res))
                top = ", ".join(f"{k} {v:.0%}" for k, v in list(res.waits.items())[:4])
                print(f"writes: round {r + 1} {op} {side}: {res.tps:,.0f} tps, p99 {res.p99_ms:.1f} ms,"
                      f" HOT {res.hot_updates}/{res.updates}, inserts {res.inserts},"
                      f" WAL {res.wal_bytes / max(res.tps * seconds, 1):,.0f} B/tx,"
                      f" FPI {res.wal_fpi}, MultiXact pages {res.multixact_pages}; waits: {top}",
                      flush=True)  # fmt: skip
    return out


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _per_tx(runs: list[dict], key: str, w: dict) -> float:
    """The median over the rounds of `key` per transaction (0 for runs recorded before the key existed)."""
    return statistics.median(r.get(key, 0) / max(r["tps"] * w["seconds"], 1) for r in runs)


def _top_waits(runs: list[dict], count: int = 3) -> str:
    """The `count` largest waits over the rounds, as mean shares of the samples."""
    total: Counter[str] = Counter()
    for r in runs:
        total.update(r.get("waits", {}))
    return ", ".join(f"{k} {v / len(runs):.0%}" for k, v in total.most_common(count)) or "-"


def render(w: dict) -> str:
    """The markdown section for docs/benchmarks.md."""
    lines = [
        HEADING,
        "",
        f"Generated by `make bench` (or `python -m loadtests.writes`, this section alone). Two stacks with the dev"
        f" stack's sizes, qlearning at revision {w['revisions']['before']} (before) and {w['revisions']['after']}"
        f" (after), the same 30-day volume; pgbench through PgBouncer, {w['clients']} clients, {w['seconds']} s per"
        f" run, before and after interleaved, {w['rounds']} rounds; medians of the rounds. p99 from pgbench's"
        " per-transaction log. HOT = `n_tup_hot_upd` of q_values over `n_tup_upd` during the runs.",
        "",
        "| operation | before tps | after tps | after/before | before p99 (ms) | after p99 (ms) | HOT updates before"
        " | HOT updates after | seed goal | goal met (after) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for op, sides in w["ops"].items():
        b, a = sides["before"], sides["after"]
        bt, at = _median(b, "tps"), _median(a, "tps")
        hot = {
            side: f"{sum(x['hot_updates'] for x in runs):,}/{sum(x['updates'] for x in runs):,}"
            for side, runs in (("before", b), ("after", a))
        }
        metric, target = GOALS.get(op.removesuffix("_fn"), (None, None))
        if metric == "tps":
            goal, met = f"≥ {target:,}/s", "yes" if at >= target else f"no ({at:,.0f}/s)"
        elif metric == "p99_ms":
            p99 = _median(a, "p99_ms")
            goal, met = f"p99 < {target} ms", "yes" if p99 < target else f"no ({p99:.1f} ms)"
        else:
            goal = met = "-"
        ratio = at / bt if bt else 0.0
        mark = "(a read)" if op in READS else "(≥ 1.3)" if ratio >= RATIO_GOAL else "(< 1.3)"
        lines.append(
            f"| {op} | {bt:,.0f} | {at:,.0f} | {ratio:.2f}× {mark}"
            f" | {_median(b, 'p99_ms'):.1f} | {_median(a, 'p99_ms'):.1f} | {hot['before']} | {hot['after']}"
            f" | {goal} | {met} |"
        )
    lines += [
        "",
        "What each run waited for and wrote (medians of the rounds; waits: share of pg_stat_activity samples of"
        " the active backends every 50 ms; WAL and full-page images from pg_stat_wal, MultiXact page accesses"
        " from pg_stat_slru, each per transaction):",
        "",
        "| operation | WAL B/tx before | WAL B/tx after | FPI/tx after | MultiXact pages/tx before | after"
        " | q_values inserts/updates after | top waits after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for op, sides in w["ops"].items():
        if op in READS:
            continue
        b, a = sides["before"], sides["after"]
        lines.append(
            f"| {op} | {_per_tx(b, 'wal_bytes', w):,.0f} | {_per_tx(a, 'wal_bytes', w):,.0f}"
            f" | {_per_tx(a, 'wal_fpi', w):.3f} | {_per_tx(b, 'multixact_pages', w):.2f}"
            f" | {_per_tx(a, 'multixact_pages', w):.2f}"
            f" | {sum(x.get('inserts', 0) for x in a):,}/{sum(x['updates'] for x in a):,} | {_top_waits(a)} |"
        )
    lines += [
        "",
        "Every round, before → after (tps): "
        + "; ".join(
            f"{op.removeprefix('qlearning.')} "
            + ", ".join(f"{x['tps']:,.0f}→{y['tps']:,.0f}" for x, y in zip(s["before"], s["after"], strict=True))
            for op, s in w["ops"].items()
        )
        + ".",
        "",
        "Reading it: no update of q_values is HOT on either side, and none can be while the seeds'"
        " `idx_q_values_lookup` holds q_value (every upsert changes it; see sql/qlearning/README.md,"
        ' "Why the upsert is not a HOT update"). The batch functions (0007) cut the round trips and per-row'
        " statements. The single-row paths keep their statements and wait for their commit's WAL flush"
        " (LWLock:WALWrite and IO:WALSync above): they gain what their WAL per transaction loses, the upsert"
        " nothing but 0007's dropped agent_types lookup, the trajectory 0008's dropped index entries (11 of 37"
        " per trajectory with 10 rewards and no session) and 0009's 10 fewer foreign-key checks (see"
        ' sql/qlearning/README.md, "What bounds the single writes"). `trajectory_insert_fn` is one trajectory'
        " through"
        " `insert_trajectories` against today's single statement: the function's JSON handling costs more"
        " than it saves for one row. `get_best_action` runs the same script on both sides: the lookup the"
        " write paths must not slow down. The p99 goals are for 18 agents on a dedicated server; here 18"
        " clients share 2 cores with PgBouncer, pgbench and other work, so a batch waits for CPU most of its"
        " time.",
        "",
    ]
    return "\n".join(lines)


def splice(doc: str, section: str) -> str:
    """`doc` with its write-paths section replaced by `section` (or added before the hand-run history)."""
    heading = next((h for h in (HEADING, *OLD_HEADINGS) if h in doc), None)
    if heading:
        start = doc.index(heading)
        end = doc.find("\n## ", start + len(heading))
        end = doc.find("\n### Earlier measurements", start) if end < 0 else end
        return doc[:start] + section + (doc[end + 1 :] if end >= 0 else "")
    marker = "### Earlier measurements"
    at = doc.find(marker)
    return doc + "\n" + section if at < 0 else doc[:at] + section + "\n" + doc[at:]


def main() -> int:
    """Both stacks from scratch, the interleaved runs, reports/bench-writes.json and the doc's section."""
    from loadtests import bench

    facts = bench.machine()
    # pgAdmin (on in dev) serves no benchmark and only takes CPU from the two sides.
    quiet = {"agentdb:tools": False}
    with BenchStack("bench-before", overrides=quiet) as before, BenchStack("bench-after", overrides=quiet) as after:
        for stack, revision in ((before, BEFORE_REVISION), (after, None)):
            print(f"writes: preparing {stack.name}", flush=True)
            prepare(stack, revision)
        result = measure(before, after)
    result["machine"] = facts
    m = bench.finish_machine(result, "bench-writes")
    section = (
        render(result)
        + bench.run_line(
            m,
            ". The machine was shared: other engineers' stacks and test suites ran on the same two cores, so"
            " compare before with after of the same round.",
        )
        + "\n"
    )
    bench.DOC.write_text(splice(bench.DOC.read_text(), section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
