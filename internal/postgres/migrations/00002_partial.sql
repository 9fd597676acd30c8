-- Partial results and enrichment data loaded ahead of time.

-- +goose Up
-- Enrichment data sets (mapping files), one row per kind, replaced whole on
-- each successful load. Scanning never fetches them: an updater or an import
-- loads them here.
CREATE TABLE enrichment (
    name          text PRIMARY KEY,
    source        text NOT NULL,
    etag          text NOT NULL DEFAULT '',
    last_modified text NOT NULL DEFAULT '',
    digest        text NOT NULL,
    entries       integer NOT NULL,
    data          jsonb NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    checked_at    timestamptz NOT NULL DEFAULT now(),
    last_error    text NOT NULL DEFAULT ''
);

-- A partial report remembers which enrichment data it waits for, the job to
-- run again, and whether an operator asked for a retry.
ALTER TABLE index_report
    ADD COLUMN waiting_for     text[] NOT NULL DEFAULT '{}',
    ADD COLUMN job             jsonb,
    ADD COLUMN retry_requested boolean NOT NULL DEFAULT false,
    ADD COLUMN requeued_at     timestamptz;
CREATE INDEX index_report_partial_idx ON index_report (requested_at DESC) WHERE state = 'IndexPartial';

-- +goose Down
DROP INDEX index_report_partial_idx;
ALTER TABLE index_report DROP COLUMN waiting_for, DROP COLUMN job, DROP COLUMN retry_requested, DROP COLUMN requeued_at;
DROP TABLE enrichment;
