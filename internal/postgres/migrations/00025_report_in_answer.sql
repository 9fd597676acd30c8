-- A usable report (IndexFinished, IndexPartial) is stored once. Its row in
-- index_report keeps only its header (state, scanner state, updated_at,
-- partial reasons, attempt, next retry: what the dispatcher's current check,
-- the partial listing and the sweeps read), without its content (packages,
-- distributions, repository, environments); the content is read from the
-- report's stored native answer (report_body, view 'native': the report's
-- JSON, gzip compressed, written in the same transaction and replaced or
-- removed by every later write of the row). Before this, the content was
-- stored twice, as jsonb and in the answer: 43 % of the database's bytes at
-- 10,000 manifests for the jsonb alone.
--
-- The records of such a report (00023) can no longer be taken from the
-- row, so its writer puts them itself (stevedore_put_records, in the
-- statement that writes the row); the trigger still takes them from a row
-- that holds its content (a report written by the release before this one
-- during a rolling upgrade, a test, a bench), as before.
--
-- Reports stored before keep their content in the row, and are read from
-- it, until they are written again or the compactor (a background service,
-- postgres.CompactReports) removes it from rows whose native answer holds
-- it; not here, to keep this migration, run at start-up, short.
--
-- During a rolling upgrade, the release before this one reads a row
-- without its content as a report without packages where it decodes the
-- report itself (its SBOM export, Harbor's report, `stevedore scan`'s
-- summary); its API serves Clair's paths and the native path from the
-- stored answers, which hold all of it, and its workers write whole rows,
-- which this release reads.
-- Independent of the other migrations' order beyond 00023.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION stevedore_report_records_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state IN ('IndexFinished', 'IndexPartial') THEN
        -- A row without its content: its writer put its records.
        IF NEW.report ? 'packages' THEN
            PERFORM stevedore_put_records(NEW.manifest_hash, NEW.report);
        END IF;
    ELSE
        DELETE FROM manifest_record WHERE manifest_hash = NEW.manifest_hash;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The code before this reads a row without its content as a report without
-- packages: such reports are marked to be indexed again (the re-index sweep
-- queues them), and their answers, which hold their content, are served
-- meanwhile.
UPDATE index_report SET reindex_requested = true
 WHERE state IN ('IndexFinished', 'IndexPartial') AND NOT report ? 'packages';
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION stevedore_report_records_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state IN ('IndexFinished', 'IndexPartial') THEN
        PERFORM stevedore_put_records(NEW.manifest_hash, NEW.report);
    ELSE
        DELETE FROM manifest_record WHERE manifest_hash = NEW.manifest_hash;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
