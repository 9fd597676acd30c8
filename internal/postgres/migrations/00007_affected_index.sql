-- Affected manifests (POST /indexer/api/v1/internal/affected_manifest/):
-- which usable reports hold a package of a given name. The index is on the
-- report itself, the coalesced truth of what a manifest holds (whiteouts and
-- replaced package databases applied), so it needs no write-path change and
-- covers reports stored before it existed. Names are indexed in lower case
-- (Python's package names are case-insensitive). Only terminal, usable reports
-- (finished or partial) are indexed; a deleted manifest has no row.
--
-- Independent of the other migrations' order: it reads only index_report,
-- which 00001 creates.

-- +goose Up
-- COST: reading every package of a report is expensive; told the default,
-- the planner prefers computing it for every row to using the index.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION stevedore_report_package_names(report jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT COST 10000 AS $$
    SELECT coalesce(array_agg(DISTINCT lower(n) ORDER BY lower(n)), '{}')
      FROM jsonb_each(CASE WHEN jsonb_typeof(report->'packages') = 'object' THEN report->'packages' ELSE '{}'::jsonb END) AS p(id, pkg)
     CROSS JOIN LATERAL (VALUES (pkg->>'name'), (pkg->'source'->>'name')) AS x(n)
     WHERE jsonb_typeof(pkg) = 'object' AND n IS NOT NULL AND n <> ''
$$;
-- +goose StatementEnd
CREATE INDEX IF NOT EXISTS index_report_package_names_idx ON index_report
    USING gin (stevedore_report_package_names(report))
    WHERE state IN ('IndexFinished', 'IndexPartial');

-- +goose Down
DROP INDEX IF EXISTS index_report_package_names_idx;
DROP FUNCTION IF EXISTS stevedore_report_package_names(jsonb);
