"""A read-through cache of the best action per (agent type, state) in Redis, in front of qlearning_db.

    cache = HotCache(connect_redis(os.environ["REDIS_URL"]), psycopg.connect(os.environ["QLEARNING_DATABASE_URL"]))
    cache.best_action("test-generator", state_hash)       # Redis first, else get_best_action()
    cache.upsert("test-generator", state_hash, {}, action_hash, {}, 0.7)   # upsert_q_value(), then invalidate

Redis is an optimisation, never a dependency: when a Redis call fails, the lookup is answered from
PostgreSQL and the cache stays out of the way until a probe succeeds (`retry_after_s`). A lookup
fails only when PostgreSQL does.

No stale read, also across a Redis outage. Three mechanisms, each for one way an entry can go stale:
- **Version per key.** An upsert increments `<prefix>:ver:<agent>:<state>` after PostgreSQL commits;
  an entry records the version it was read under and counts only while that is still the version.
  A reader that races an upsert therefore never installs an old answer as fresh.
- **Server identity.** An entry also records the Redis `run_id` it was written under, and every
  lookup reads the current one in the same round trip. A Redis that restarts has a new run_id, so
  entries it reloads from its RDB or AOF file (which may predate invalidations it lost) never count.
- **Pending invalidations.** An upsert whose increment fails (Redis down or unreachable) is
  remembered; before this cache reads Redis again it replays them. This covers a Redis that stayed
  up while this client could not reach it. Another process's missed invalidations are bounded by the
  entry TTL (`ttl_s`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

DEFAULT_TTL_S = 300


def connect_redis(url: str, timeout_s: float = 0.5) -> redis.Redis:
    """A client for HotCache: short timeouts and no retries, so a dead Redis costs one timeout, not ten."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    fallbacks: int = 0  # lookups answered by PostgreSQL because Redis was unusable
    redis_errors: int = 0
    missed_invalidations: int = 0
    recoveries: int = 0


class HotCache:
    """Read-through cache for get_best_action; thread-safe when its PostgreSQL connection is."""

    def __init__(
        self,
        redis_client: redis.Redis,
        pg_conn: psycopg.Connection | Any,
        *,
        ttl_s: int = DEFAULT_TTL_S,
        prefix: str = "hc",
        retry_after_s: float = 0.2,
    ):
        self.redis = redis_client
        self.pg = pg_conn  # a psycopg Connection, or a psycopg_pool.ConnectionPool
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.retry_after_s = retry_after_s
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._degraded = False
        self._next_probe = 0.0
        self._pending: set[str] = set()

    # ----- keys --------------------------------------------------------------------------------
    def _keys(self, agent_type: str, state_hash: str) -> tuple[str, str]:
        suffix = f"{agent_type}:{state_hash}"
        return f"{self.prefix}:best:{suffix}", f"{self.prefix}:ver:{suffix}"

    # ----- PostgreSQL --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _pg(self) -> Iterator[psycopg.Connection]:
        if hasattr(self.pg, "getconn"):  # a pool
            with self.pg.connection() as conn:
                yield conn
        else:
            yield self.pg

    def _best_from_pg(self, agent_type: str, state_hash: str) -> dict | None:
        with self._pg() as conn, conn.transaction():
            row = conn.execute(
                "SELECT action_hash, action_data, q_value::float8, visit_count, confidence_score::float8"
                " FROM get_best_action(%s, %s)",
                (agent_type, state_hash),
            ).fetchone()
        if row is None:
            return None
        keys = ("action_hash", "action_data", "q_value", "visit_count", "confidence_score")
        return dict(zip(keys, row, strict=True))

    # ----- Redis health ------------------------------------------------------------------------
    def _failed(self, pending_key: str | None = None) -> None:
        with self._lock:
            self.stats.redis_errors += 1
            self._degraded = True
            self._next_probe = time.monotonic() + self.retry_after_s
            if pending_key:
                self._pending.add(pending_key)
                self.stats.missed_invalidations += 1

    def _redis_usable(self) -> bool:
        """False while Redis is known bad; after `retry_after_s`, replay missed invalidations first."""
        with self._lock:
            if not self._degraded:
                return True
            if time.monotonic() < self._next_probe:
                return False
            self._next_probe = time.monotonic() + self.retry_after_s  # one prober at a time
            pending = list(self._pending)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for key in pending:
                pipe.incr(key)
            pipe.ping()
            pipe.execute()
        except redis.RedisError:
            self._failed()
            return False
        with self._lock:
            self._pending.difference_update(pending)
            if not self._pending:
                self._degraded = False
                self.stats.recoveries += 1
            return not self._degraded

    # ----- the API -----------------------------------------------------------------------------
    def best_action(self, agent_type: str, state_hash: str) -> dict | None:
        """The best live action of a state (get_best_action's row as a dict), or None if it has none."""
        key, ver_key = self._keys(agent_type, state_hash)
        if not self._redis_usable():
            with self._lock:
                self.stats.fallbacks += 1
            return self._best_from_pg(agent_type, state_hash)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.mget(key, ver_key)
            pipe.info("server")
            (raw, ver), server = pipe.execute()
        except redis.RedisError:
            self._failed()
            with self._lock:
                self.stats.fallbacks += 1
            return self._best_from_pg(agent_type, state_hash)
        version, run_id = int(ver or 0), server["run_id"]
        if raw is not None:
            entry = json.loads(raw)
            if entry["run"] == run_id and entry["ver"] == version:
                with self._lock:
                    self.stats.hits += 1
                return entry["row"]
        with self._lock:
            self.stats.misses += 1
        row = self._best_from_pg(agent_type, state_hash)
        try:
            # Tagged with the version seen before the read: an upsert since then makes it a miss.
            self.redis.set(key, json.dumps({"run": run_id, "ver": version, "row": row}), ex=self.ttl_s)
        except redis.RedisError:
            self._failed()
        return row

    def upsert(
        self,
        agent_type: str,
        state_hash: str,
        state_data: dict | None,
        action_hash: str,
        action_data: dict | None,
        q_value: float,
        session_id: str | None = None,
    ) -> int:
        """upsert_q_value() committed in PostgreSQL, then the state's cache entry invalidated."""
        with self._pg() as conn, conn.transaction():
            (q_value_id,) = conn.execute(
                "SELECT upsert_q_value(%s, %s, %s, %s, %s, %s, %s)",
                (
                    agent_type,
                    state_hash,
                    psycopg.types.json.Jsonb(state_data) if state_data is not None else None,
                    action_hash,
                    psycopg.types.json.Jsonb(action_data) if action_data is not None else None,
                    q_value,
                    session_id,
                ),
            ).fetchone()
        key, ver_key = self._keys(agent_type, state_hash)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(ver_key)
            pipe.delete(key)
            pipe.execute()
        except redis.RedisError:
            self._failed(pending_key=ver_key)
        return q_value_id
