"""Client-side load with a ledger: every write the server acknowledged, every error, and when."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

MAX_SECONDS = 60  # a limit that only keeps a broken stack from hanging the run


@dataclass
class Ledger:
    acked_upserts: list[tuple[str, float]] = field(default_factory=list)  # (state_hash, q_value)
    acked_trajectories: list[str] = field(default_factory=list)
    ack_times: list[float] = field(default_factory=list)
    error_times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acked(self) -> int:
        return len(self.acked_upserts) + len(self.acked_trajectories)

    def recovered_at(self) -> float | None:
        """The first acknowledgement after the last error: when the clients were whole again."""
        with self.lock:
            last_error = max(self.error_times, default=None)
        return None if last_error is None else self.first_ack_after(last_error)

    def first_error_after(self, moment: float) -> float | None:
        with self.lock:
            later = [t for t in self.error_times if t > moment]
        return min(later) if later else None

    def first_ack_after(self, moment: float) -> float | None:
        with self.lock:
            later = [t for t in self.ack_times if t > moment]
        return min(later) if later else None


class WriteLoad:
    """Threads that upsert Q-values and record trajectories with rewards, through PgBouncer, until stopped.

    Each write has its own key, so presence after a fault proves it survived. A write counts only when
    its COMMIT returned; a write whose COMMIT failed is in doubt and may or may not be there.
    """

    def __init__(self, dsn: str, tag: str, threads: int = 4):
        self.dsn, self.tag, self.threads = dsn, tag, threads
        self.ledger = Ledger()
        self.stop = threading.Event()
        self._workers = [threading.Thread(target=self._work, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self) -> WriteLoad:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _connect(self) -> psycopg.Connection | None:
        try:
            return psycopg.connect(self.dsn, connect_timeout=2, autocommit=True, prepare_threshold=None)
        except psycopg.Error as exc:
            self._error(exc)
            return None

    def _error(self, exc: Exception) -> None:
        with self.ledger.lock:
            self.ledger.error_times.append(time.monotonic())
            self.ledger.errors.append(f"{type(exc).__name__}: {str(exc).strip()[:200]}")

    def _work(self, worker: int) -> None:
        conn, i = None, 0
        while not self.stop.is_set():
            if conn is None or conn.closed:
                conn = self._connect()
                if conn is None:
                    time.sleep(0.05)
                    continue
            i += 1
            state = f"{self.tag}-{worker}-{i}"
            q = round(i / 1000, 6)
            trajectory = str(uuid.uuid4())
            try:
                conn.execute("SELECT upsert_q_value('test-generator', %s, '{}', 'act', '{}', %s)", (state, q))
                with self.ledger.lock:
                    self.ledger.acked_upserts.append((state, q))
                    self.ledger.ack_times.append(time.monotonic())
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO trajectories (trajectory_id, agent_type, task_id, total_reward)"
                        " VALUES (%s, 'test-executor', %s, 1)",
                        (trajectory, state),
                    )
                    conn.execute(
                        "INSERT INTO rewards (agent_type, trajectory_id, state_hash, action_hash, reward_value)"
                        " VALUES ('test-executor', %s, %s, 'act', 1)",
                        (trajectory, state),
                    )
                with self.ledger.lock:
                    self.ledger.acked_trajectories.append(trajectory)
                    self.ledger.ack_times.append(time.monotonic())
            except psycopg.Error as exc:
                self._error(exc)
                conn.close()
                time.sleep(0.05)
        if conn is not None:
            conn.close()


def wait_for(condition: Callable[[], bool], what: str, limit: float = MAX_SECONDS) -> float:
    """Poll until `condition()` holds; return the seconds it took; fail naming `what` past the limit."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > limit:
            raise AssertionError(f"gave up waiting for {what} after {limit}s")
        time.sleep(0.05)
    return time.monotonic() - start


def lost_writes(admin_dsn: str, ledger: Ledger) -> dict[str, list]:
    """Acknowledged writes the database does not have, by kind (each list must be empty)."""
    with psycopg.connect(admin_dsn) as conn:
        states = dict(
            conn.execute(
                "SELECT state_hash, q_value::float8 FROM q_values WHERE state_hash = ANY(%s)",
                ([s for s, _ in ledger.acked_upserts],),
            ).fetchall()
        )
        found = {
            str(r[0])
            for r in conn.execute(
                "SELECT t.trajectory_id FROM trajectories t JOIN rewards r USING (trajectory_id)"
                " WHERE t.trajectory_id = ANY(%s::uuid[])",
                (ledger.acked_trajectories,),
            )
        }
    return {
        "q_values": [(s, q) for s, q in ledger.acked_upserts if states.get(s) != q],
        "trajectories_with_rewards": [t for t in ledger.acked_trajectories if t not in found],
    }
