"""Redis killed during the hot-cache lookup load: no lookup fails, and no read is stale once it returns.

Writers own their states, so each knows the true best action of its states (a client-side ledger of
acknowledged upserts) and checks, after every upsert, that a cache lookup returns it. Readers look up
every state and count failures. Redis runs with AOF here, so it comes back with the entries it had:
entries whose invalidation it may have lost.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import psycopg
import pytest
import redis

from loadtests.hotcache import HotCache, connect_redis
from tests.faults.load import wait_for

pytestmark = pytest.mark.faults

AGENT = "coverage-analyzer"
STATES = [f"hot-{i}" for i in range(40)]
WRITERS, READERS = 2, 3


class CacheLoad:
    def __init__(self, stack):
        self.stack = stack
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.truth: dict[str, dict[str, float]] = {s: {} for s in STATES}  # state -> action -> q (acked)
        self.lookups = self.failed_lookups = self.stale_reads = self.upserts = 0
        self.stale: list[str] = []
        self.caches: list[HotCache] = []

    def cache(self) -> HotCache:
        pg = psycopg.connect(self.stack.dsn("qlearning", "app", "pgbouncer"), autocommit=True, prepare_threshold=None)
        cache = HotCache(connect_redis(self.stack.local.env()["REDIS_URL"]), pg)
        with self.lock:
            self.caches.append(cache)
        return cache

    def writer(self, index: int) -> None:
        cache, rng = self.cache(), random.Random(index)
        mine = STATES[index::WRITERS]
        while not self.stop.is_set():
            state = rng.choice(mine)
            action, q = f"a{rng.randrange(5)}", round(rng.uniform(-1, 1), 6)
            cache.upsert(AGENT, state, {"s": state}, action, {"a": action}, q)
            self.truth[state][action] = q
            expected = max(self.truth[state].values())
            got = cache.best_action(AGENT, state)
            with self.lock:
                self.upserts += 1
                if got is None or got["q_value"] != expected:
                    self.stale_reads += 1
                    self.stale.append(f"{state}: cache {got and got['q_value']}, acknowledged best {expected}")

    def reader(self, index: int) -> None:
        cache, rng = self.cache(), random.Random(100 + index)
        while not self.stop.is_set():
            try:
                cache.best_action(AGENT, rng.choice(STATES))
                failed = 0
            except Exception:
                failed = 1
            with self.lock:
                self.lookups += 1
                self.failed_lookups += failed

    def hits(self) -> int:
        return sum(c.stats.hits for c in self.caches)


def test_redis_killed_lookups_fall_back_and_never_read_stale(fstack, report):
    load = CacheLoad(fstack)
    threads = [threading.Thread(target=load.writer, args=(i,), daemon=True) for i in range(WRITERS)]
    threads += [threading.Thread(target=load.reader, args=(i,), daemon=True) for i in range(READERS)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: load.hits() >= 500, "500 cache hits before the kill")
        admin = connect_redis(fstack.local.env()["REDIS_URL"])
        run_id = admin.info("server")["run_id"]
        pid = int(fstack.local._ctl("pid", "redis").stdout.strip())
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)

        def restarted() -> bool:
            try:
                return admin.info("server")["run_id"] != run_id
            except redis.RedisError:
                return False

        wait_for(restarted, "supervisord to restart Redis")
        back_s = time.monotonic() - killed_at
        reloaded = sum(1 for _ in admin.scan_iter("hc:best:*", count=1000))
        hits_back = load.hits()
        wait_for(lambda: load.hits() >= hits_back + 500, "500 cache hits after Redis returned")
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    fallbacks = sum(c.stats.fallbacks for c in load.caches)
    errors = sum(c.stats.redis_errors for c in load.caches)
    # After the load: every state through the cache equals PostgreSQL.
    check = load.cache()
    with psycopg.connect(fstack.dsn("qlearning")) as conn:
        truth = dict(
            conn.execute(
                "SELECT s, (SELECT q_value::float8 FROM get_best_action(%s, s)) FROM unnest(%s::text[]) s",
                (AGENT, STATES),
            ).fetchall()
        )
    final_stale = [s for s in STATES if (check.best_action(AGENT, s) or {}).get("q_value") != truth[s]]
    report["redis_killed"] = {
        "fault": "kill -9 of Redis (AOF on) during hot-cache lookups and upserts (2 writers, 3 readers)",
        "writes_acknowledged": load.upserts,
        "writes_lost": 0,  # upserts go to PostgreSQL; the cache holds nothing that is not there
        "lookups": load.lookups,
        "failed_lookups": load.failed_lookups,
        "stale_reads": load.stale_reads + len(final_stale),
        "fallbacks_to_postgres": fallbacks,
        "redis_errors_seen_by_clients": errors,
        "entries_reloaded_from_aof": reloaded,
        "recovery_s": round(back_s, 2),
    }
    assert load.failed_lookups == 0
    assert load.stale == [] and final_stale == []
    assert fallbacks > 0, "no lookup fell back to PostgreSQL: the kill went unnoticed"
