"""agentdb: infrastructure-as-code and operations for agent-platform PostgreSQL databases."""
