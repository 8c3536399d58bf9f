-- Undo 0002: remove the 18 registry rows. Rows that reference them are removed first: going below
-- this revision means the fleet's agent types, and what they learned, no longer exist.
CREATE TEMPORARY TABLE qe_agent_types ON COMMIT DROP AS
SELECT unnest(ARRAY[
    'test-generator', 'test-executor', 'coverage-analyzer', 'quality-gate', 'quality-analyzer',
    'performance-tester', 'security-scanner', 'requirements-validator', 'production-intelligence',
    'fleet-commander', 'deployment-readiness', 'regression-risk-analyzer', 'test-data-architect',
    'api-contract-validator', 'flaky-test-hunter', 'visual-tester', 'chaos-engineer', 'code-complexity'
]::VARCHAR(50)[]) AS agent_type;

DELETE FROM agent_states WHERE agent_type IN (SELECT agent_type FROM qe_agent_types);
DELETE FROM patterns WHERE agent_type IN (SELECT agent_type FROM qe_agent_types);
DELETE FROM rewards WHERE agent_type IN (SELECT agent_type FROM qe_agent_types);
DELETE FROM trajectories WHERE agent_type IN (SELECT agent_type FROM qe_agent_types);
DELETE FROM q_values WHERE agent_type IN (SELECT agent_type FROM qe_agent_types);
DELETE FROM sessions WHERE agent_type IN (SELECT agent_type FROM qe_agent_types);
DELETE FROM agent_types WHERE agent_type IN (SELECT agent_type FROM qe_agent_types);
