"""Shared helpers for the agentic tests: connections and a fresh tenant (user, agent, session) per test.

This module holds no tests; the agentic test modules import from it.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from psycopg.types.json import Jsonb

KEY = "agentic"


@dataclass(frozen=True)
class Tenant:
    """One user with one agent and one active session (expires in a day)."""

    user_id: uuid.UUID
    agent_id: uuid.UUID
    session_id: uuid.UUID


@contextmanager
def connect(stack, role: str = "admin", via: str = "postgres", autocommit: bool = True):
    """A psycopg connection to the agentic database as `role`."""
    with psycopg.connect(stack.dsn(KEY, role=role, via=via), autocommit=autocommit) as conn:
        yield conn


def make_tenant(conn: psycopg.Connection, *, expires_in: timedelta = timedelta(days=1)) -> Tenant:
    """Insert a user, an agent and an active session as the superuser (RLS does not apply)."""
    user_id, agent_id, session_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    conn.execute("INSERT INTO users (user_id, email) VALUES (%s, %s)", (user_id, f"{user_id}@tests.agentdb.invalid"))
    conn.execute(
        "INSERT INTO agents (agent_id, name, persona_type, capabilities) VALUES (%s, 'tester', 'qa', %s)",
        (agent_id, Jsonb(["review", "test"])),
    )
    conn.execute(
        "INSERT INTO agent_sessions (session_id, agent_id, user_id, started_at, expires_at)"
        " VALUES (%s, %s, %s, now() - interval '1 minute', now() + %s)",
        (session_id, agent_id, user_id, expires_in),
    )
    return Tenant(user_id, agent_id, session_id)


def add_decision(
    conn: psycopg.Connection,
    session_id: uuid.UUID,
    feedback: str | None = "approved",
    *,
    age: timedelta = timedelta(0),
) -> uuid.UUID:
    """One decision in `session_id`, created `age` ago, with the given user feedback."""
    row = conn.execute(
        "INSERT INTO agent_decisions (session_id, decision_type, input_context, action_taken,"
        " confidence_score,"
        " user_feedback, created_at) VALUES (%s, 'code_generation', %s, %s, 0.9, %s, now() - %s)"
        " RETURNING decision_id",
        (session_id, Jsonb({"prompt": "write a test"}), Jsonb({"type": "file_write"}), feedback, age),
    ).fetchone()
    return row[0]


def add_message(
    conn: psycopg.Connection, session_id: uuid.UUID, *, age: timedelta = timedelta(0), content: str = "hello"
) -> uuid.UUID:
    """One conversation message in `session_id`, created `age` ago."""
    row = conn.execute(
        "INSERT INTO conversation_history (session_id, role, content, message_type, created_at)"
        " VALUES (%s, 'user', %s, 'text', now() - %s) RETURNING message_id",
        (session_id, content, age),
    ).fetchone()
    return row[0]


def count(conn: psycopg.Connection, sql: str, params: tuple = ()) -> int:
    """The single integer a COUNT query returns."""
    return conn.execute(sql, params).fetchone()[0]
