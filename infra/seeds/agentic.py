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


# ----- volume -------------------------------------------------------------------------------------
# The story's performance scenario: "Given a conversation history with 10000 messages, when querying
# recent messages for a session, then response time should be under 100ms". The volume gives each
# of 20 active sessions (20 tenants, 10 personas) exactly such a history over the last 30 days, plus
# 50 decisions per session through the audit trigger. `scale` multiplies the sessions, never the
# history length.
VOLUME_30D = {"sessions": 20}
MESSAGES_PER_SESSION = 10_000
DECISIONS_PER_SESSION = 50
VOLUME_AGENTS = 10
HISTORY_DAYS = 30
VOLUME_DOMAIN = "volume.example.com"

_VOLUME_USERS_SQL = """
INSERT INTO users (user_id, email, display_name)
SELECT md5('agentic-volume-user:' || g.i)::uuid, 'tenant' || g.i || '@' || %(domain)s, 'Tenant ' || g.i
  FROM generate_series(1, %(sessions)s) AS g (i)
"""

_VOLUME_AGENTS_SQL = """
INSERT INTO agents (agent_id, name, persona_type, capabilities, config)
SELECT md5('agentic-volume-agent:' || g.i)::uuid, 'volume-agent-' || g.i,
       (ARRAY['developer', 'qa', 'architect', 'analyst', 'writer'])[1 + g.i %% 5],
       '["code_generation", "review"]'::jsonb, '{"volume": true}'::jsonb
  FROM generate_series(1, %(agents)s) AS g (i)
ON CONFLICT (agent_id) DO NOTHING
"""

_VOLUME_SESSIONS_SQL = """
INSERT INTO agent_sessions (session_id, agent_id, user_id, context, started_at, expires_at, metadata)
SELECT md5('agentic-volume-session:' || g.i)::uuid,
       md5('agentic-volume-agent:' || (1 + g.i %% %(agents)s))::uuid,
       md5('agentic-volume-user:' || g.i)::uuid,
       '{"project": "volume"}'::jsonb,
       %(anchor)s - make_interval(days => %(days)s),
       %(anchor)s + make_interval(days => %(days)s),
       '{"volume": true}'::jsonb
  FROM generate_series(1, %(sessions)s) AS g (i)
"""

# Messages alternate user / agent, newest last, one every few minutes across the window.
_VOLUME_MESSAGES_SQL = """
INSERT INTO conversation_history (session_id, role, content, message_type, created_at, tokens_used, model_used)
SELECT md5('agentic-volume-session:' || s.i)::uuid,
       CASE WHEN m.j %% 2 = 0 THEN 'agent' ELSE 'user' END,
       CASE WHEN m.j %% 2 = 0 THEN 'Here is the change for step ' || m.j || ': ' || repeat('diff line; ', 8)
            ELSE 'Please handle step ' || m.j || ' of the plan.' END,
       CASE WHEN m.j %% 10 = 0 THEN 'code' ELSE 'text' END,
       %(anchor)s - make_interval(secs => %(days)s * 86400.0 * (%(messages)s - m.j + 1) / %(messages)s),
       20 + m.j %% 200,
       'volume-model'
  FROM generate_series(1, %(sessions)s) AS s (i)
 CROSS JOIN generate_series(1, %(messages)s) AS m (j)
"""

_VOLUME_DECISIONS_SQL = """
INSERT INTO agent_decisions (session_id, decision_type, input_context, decision_rationale, action_taken,
                             confidence_score, user_feedback, created_at, execution_time_ms)
SELECT md5('agentic-volume-session:' || s.i)::uuid, 'code_generation',
       jsonb_build_object('step', d.j), 'Follows the plan',
       jsonb_build_object('type', 'file_write', 'risk_level', 'low'),
       0.85, CASE WHEN d.j %% 10 = 0 THEN 'rejected' ELSE 'approved' END,
       %(anchor)s - make_interval(hours => %(decisions)s - d.j), 100 + d.j
  FROM generate_series(1, %(sessions)s) AS s (i)
 CROSS JOIN generate_series(1, %(decisions)s) AS d (j)
"""


def volume_counts(scale: float = 1.0) -> dict[str, int]:
    """Rows per table for `scale` times the volume (sessions scale; each history stays 10,000)."""
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
        raise ValueError(f"scale must be a number greater than 0, got {scale!r}")
    sessions = max(1, round(VOLUME_30D["sessions"] * scale))
    return {
        "users": sessions,
        "agent_sessions": sessions,
        "conversation_history": sessions * MESSAGES_PER_SESSION,
        "agent_decisions": sessions * DECISIONS_PER_SESSION,
    }


def volume(conn: psycopg.Connection, scale: float = 1.0, seed: int = 42) -> dict[str, int]:
    """Add the volume tenants (users at volume.example.com) and their histories; the caller commits.

    Decisions write append-only audit rows that keep their users and sessions from being deleted,
    so the volume loads once per database and a second run is refused with a clear error. `seed`
    is accepted for the common interface; the rows are a pure function of their number.
    """
    counts = volume_counts(scale)
    params = {
        "sessions": counts["agent_sessions"],
        "agents": VOLUME_AGENTS,
        "messages": MESSAGES_PER_SESSION,
        "decisions": DECISIONS_PER_SESSION,
        "days": HISTORY_DAYS,
        "domain": VOLUME_DOMAIN,
    }
    with conn.transaction(), conn.cursor() as cur:
        params["anchor"] = cur.execute("SELECT now()").fetchone()[0]
        existing = cur.execute("SELECT count(*) FROM users WHERE email LIKE %s", ("%@" + VOLUME_DOMAIN,)).fetchone()[0]
        if existing:
            raise ValueError(
                f"agentic already holds volume tenants (@{VOLUME_DOMAIN}); their audit rows are append-only,"
                " so the volume loads once per database (agentdb destroy / a fresh stack to reload)"
            )
        for statement in (
            _VOLUME_USERS_SQL,
            _VOLUME_AGENTS_SQL,
            _VOLUME_SESSIONS_SQL,
            _VOLUME_MESSAGES_SQL,
            _VOLUME_DECISIONS_SQL,
        ):
            cur.execute(statement, params)
        cur.execute("ANALYZE users, agents, agent_sessions, conversation_history, agent_decisions")
    return counts
