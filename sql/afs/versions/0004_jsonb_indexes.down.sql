DROP INDEX idx_consensus_all_scores;
DROP INDEX idx_proposals_estimated_impact;
DROP INDEX idx_tasks_metadata;
