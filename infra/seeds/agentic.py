"""Sample data for the agentic database (story S0-1.1): two tenants, three personas, a short history each.

`agentdb seed --db agentic --sample` calls `sample(conn)`. Every row has a fixed key and inserts use
ON CONFLICT DO NOTHING, so running it twice changes nothing. Decisions go through the real triggers
(audit rows, session checks) and trust through `agentic_evaluate_trust_level`.
"""

from __future__ import annotations

import uuid

import psycopg
from psycopg.types.json import Jsonb

_NS = uuid.UUID("0d4a8f52-6a3e-4c1b-9f7e-5b2d8c0e1a47")


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(_NS, name)


USERS = [("ada", "ada@example.com", "Ada"), ("grace", "grace@example.com", "Grace")]

# (name, persona_type, capabilities)
AGENTS = [
    ("dev-agent", "developer", ["code_generation", "refactoring"]),
    ("qa-agent", "qa", ["review", "test"]),
    ("architect-agent", "architect", ["design_review"]),
]

# (session, user, agent, approved decisions, rejected decisions)
SESSIONS = [
    ("ada-dev", "ada", "dev-agent", 6, 0),
    ("grace-qa", "grace", "qa-agent", 3, 1),
]

KNOWLEDGE = [
    ("dev-agent", "pattern", "backend", {"title": "Repository pattern", "summary": "Isolate persistence"}),
    ("qa-agent", "solution", "testing", {"title": "Flaky test triage", "summary": "Quarantine, then fix"}),
]


def sample(conn: psycopg.Connection) -> None:
    """Insert the sample tenants, agents, sessions, decisions, messages and knowledge."""
    for name, email, display in USERS:
        conn.execute(
            "INSERT INTO users (user_id, email, display_name) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (_id(name), email, display),
        )
    for name, persona, capabilities in AGENTS:
        conn.execute(
            "INSERT INTO agents (agent_id, name, persona_type, capabilities, config)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (_id(name), name, persona, Jsonb(capabilities), Jsonb({"model": "default"})),
        )
    for agent, kind, domain, content in KNOWLEDGE:
        conn.execute(
            "INSERT INTO agent_knowledge (knowledge_id, agent_id, knowledge_type, domain, content)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (_id(f"{agent}/{content['title']}"), _id(agent), kind, domain, Jsonb(content)),
        )
    for session, user, agent, approved, rejected in SESSIONS:
        created = conn.execute(
            "INSERT INTO agent_sessions (session_id, agent_id, user_id, context, expires_at)"
            " VALUES (%s, %s, %s, %s, now() + interval '30 days')"
            " ON CONFLICT DO NOTHING RETURNING session_id",
            (_id(session), _id(agent), _id(user), Jsonb({"project": "agentdb-demo"})),
        ).fetchone()
        if not created:
            continue  # already seeded: decisions and messages came with it
        _history(conn, _id(session), approved, rejected)


def _history(conn: psycopg.Connection, session_id: uuid.UUID, approved: int, rejected: int) -> None:
    outcomes = ["approved"] * approved + ["rejected"] * rejected
    parent = None
    for i, feedback in enumerate(outcomes):
        parent = conn.execute(
            "INSERT INTO conversation_history (session_id, role, content, message_type, parent_message_id,"
            " tokens_used, model_used) VALUES (%s, %s, %s, 'text', %s, %s, 'demo-model')"
            " RETURNING message_id",
            (session_id, "user" if i % 2 == 0 else "agent", f"Step {i + 1}", parent, 20 + i),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO agent_decisions (session_id, decision_type, input_context, decision_rationale,"
            " action_taken, confidence_score, user_feedback, execution_time_ms)"
            " VALUES (%s, 'code_generation', %s, %s, %s, 0.85, %s, 120)",
            (
                session_id,
                Jsonb({"prompt": f"Step {i + 1}"}),
                "Follows the project's conventions",
                Jsonb({"type": "file_write", "risk_level": "low"}),
                feedback,
            ),
        )
    conn.execute("SELECT agentic_evaluate_trust_level(%s)", (session_id,))
