"""Data generators for `agentdb seed --db <key>`: one module per database, `sample(conn)` and `volume(conn, ...)`."""
