-- Seed 003, migration 004 "JSONB Indexes": GIN on tasks.metadata, proposals.estimated_impact and
-- consensus.all_scores (the default jsonb_ops, so key-exists queries (?) are indexed as well as @>).

CREATE INDEX idx_tasks_metadata ON tasks USING gin (metadata);
CREATE INDEX idx_proposals_estimated_impact ON optimization_proposals USING gin (estimated_impact);
CREATE INDEX idx_consensus_all_scores ON consensus_decisions USING gin (all_scores);
