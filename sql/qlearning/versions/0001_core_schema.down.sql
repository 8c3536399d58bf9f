-- Undo 0001: drop the seven tables (children first) and the trigger function.
DROP TABLE agent_states;
DROP TABLE patterns;
DROP TABLE rewards;
DROP TABLE trajectories;
DROP TABLE q_values;
DROP TABLE sessions;
DROP TABLE agent_types;
DROP FUNCTION set_updated_at();
