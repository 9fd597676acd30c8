-- Re-indexing after scanner upgrades.

-- +goose Up
-- The version of a scanner's file matching: two versions of a scanner with
-- the same match_version are given the same files, so a layer in which one
-- was given none needs no reading for the other. Empty: unknown.
ALTER TABLE scanner ADD COLUMN match_version text NOT NULL DEFAULT '';

-- Re-index requests and the sweep's bookkeeping.
ALTER TABLE index_report
    ADD COLUMN reindex_requested boolean NOT NULL DEFAULT false,
    ADD COLUMN reindex_queued_at timestamptz;
CREATE INDEX index_report_requested_idx ON index_report (requested_at DESC) WHERE state = 'IndexFinished';

-- +goose Down
DROP INDEX index_report_requested_idx;
ALTER TABLE index_report DROP COLUMN reindex_requested, DROP COLUMN reindex_queued_at;
ALTER TABLE scanner DROP COLUMN match_version;
