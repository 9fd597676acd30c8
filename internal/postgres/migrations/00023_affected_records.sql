-- Affected manifests (POST /indexer/api/v1/internal/affected_manifest/)
-- from content-addressed records instead of every candidate report's JSON.
--
-- A record is what claircore's matchers look at of one package of a report:
-- the package (without its report-local id) and each of its environments'
-- distribution and repositories (without theirs, and without the package
-- database and layer, which no matcher reads). The same package of a shared
-- base layer is the same record in every manifest built on it: it is stored
-- once (affected_record, by the sha256 of its JSON), and a usable report
-- (IndexFinished, IndexPartial) lists the ids of its records
-- (manifest_record, one row per report, with a GIN index on the ids). The
-- affected query finds the records of a name (btree on the lower-case name
-- and source name, lower() of Postgres on both sides as before), then the
-- manifests holding them, and decodes each record once, whatever the
-- number of manifests holding it.
--
-- The records of a report are written by a trigger on index_report, in the
-- transaction that writes the report, whoever writes it (the worker, a
-- test, a bench); a report that stops being usable loses its row, and a
-- deleted report loses it by cascade. Records no report lists any more are
-- left in place (the next report holding the same package finds them, and
-- the affected query reads only records a usable report lists).
--
-- Back-filled from the reports stored before. The expression index of
-- 00007, which this replaces, goes (its function stays with 00007).
-- Independent of the other migrations' order beyond 00001 (index_report).

-- +goose Up
CREATE TABLE affected_record (
    -- int, not bigint: a report's list of ids is half the size (two
    -- billion distinct packages are far beyond any fleet).
    id           serial PRIMARY KEY,
    hash         bytea NOT NULL UNIQUE,
    -- lower(name), and lower(source name) when it is another name.
    name_lower   text,
    source_lower text,
    body         jsonb NOT NULL
);
CREATE INDEX affected_record_name_idx ON affected_record (name_lower);
CREATE INDEX affected_record_source_idx ON affected_record (source_lower) WHERE source_lower IS NOT NULL;

CREATE TABLE manifest_record (
    manifest_hash text PRIMARY KEY REFERENCES index_report (manifest_hash) ON DELETE CASCADE,
    record_ids    int[] NOT NULL
);
-- fastupdate off: the affected query reads no pending list.
CREATE INDEX manifest_record_ids_idx ON manifest_record USING gin (record_ids) WITH (fastupdate = off);

-- An object without its "id"; anything else as it is.
-- +goose StatementBegin
CREATE FUNCTION stevedore_without_id(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'object' THEN v - 'id' ELSE v END
$$;
-- +goose StatementEnd

-- A package's environments with their distribution and repositories in
-- place of their ids (what no id names is left out, as the matchers' reader
-- did); an environment not in Stevedore's shape as it is. dists and repos
-- are the report's, by id (NULL when not an object).
-- +goose StatementBegin
CREATE FUNCTION stevedore_record_environments(envs jsonb, dists jsonb, repos jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(envs) <> 'array' THEN envs ELSE (
        SELECT coalesce(jsonb_agg(CASE WHEN jsonb_typeof(x.e) <> 'object' THEN x.e ELSE jsonb_build_object(
                   'distribution', stevedore_without_id(dists->(x.e->>'distribution_id')),
                   'repositories', CASE WHEN jsonb_typeof(x.e->'repository_ids') = 'array' THEN (
                       SELECT coalesce(jsonb_agg(stevedore_without_id(repos->(i.id #>> '{}')) ORDER BY i.ord), '[]'::jsonb)
                         FROM jsonb_array_elements(x.e->'repository_ids') WITH ORDINALITY AS i(id, ord)
                        WHERE repos->(i.id #>> '{}') IS NOT NULL) END) END
               ORDER BY x.ord), '[]'::jsonb)
          FROM jsonb_array_elements(envs) WITH ORDINALITY AS x(e, ord)) END
$$;
-- +goose StatementEnd

-- The records of a report's packages (pkgs), given its environments, its
-- distributions and its repositories by id (each NULL when not an object):
-- what is not in the shape Stevedore writes is carried as it is, and the
-- reader says what it could not read. One row per distinct record, in hash
-- order. Packages with neither a name nor a source name are left out: no
-- vulnerability names them.
-- +goose StatementBegin
CREATE FUNCTION stevedore_report_records(pkgs jsonb, envs jsonb, dists jsonb, repos jsonb)
RETURNS TABLE (hash bytea, name_lower text, source_lower text, body jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    -- Environments are resolved once per distinct value (most packages of
    -- a report have one of a few), not once per package.
    WITH p AS MATERIALIZED (
        SELECT lower(p.pkg->>'name') AS n, lower(p.pkg->'source'->>'name') AS s,
               CASE WHEN jsonb_typeof(p.pkg->'source') = 'object'
                    THEN jsonb_set(p.pkg - 'id', '{source}', (p.pkg->'source') - 'id')
                    ELSE p.pkg - 'id' END AS pkg,
               coalesce(envs->p.id, 'null'::jsonb) AS e
          FROM jsonb_each(pkgs) AS p(id, pkg)
         WHERE jsonb_typeof(p.pkg) = 'object'),
    e AS MATERIALIZED (
        SELECT d.e, stevedore_record_environments(d.e, dists, repos) AS re
          FROM (SELECT DISTINCT p.e FROM p) AS d),
    r AS (
        SELECT p.n, p.s, jsonb_build_object('package', p.pkg, 'environments', e.re) AS body
          FROM p JOIN e ON e.e = p.e
         WHERE coalesce(p.n, p.s, '') <> '')
    SELECT DISTINCT ON (1) sha256(convert_to(r.body::text, 'UTF8')), r.n, nullif(r.s, r.n), r.body
      FROM r
     ORDER BY 1
$$;
-- +goose StatementEnd

-- An object member of a report, or NULL when the report or the member is
-- not an object.
-- +goose StatementBegin
CREATE FUNCTION stevedore_report_part(report jsonb, part text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(report->part) = 'object' THEN report->part END
$$;
-- +goose StatementEnd

-- Writes the records of manifest's report and its list of them. Two
-- statements: the second sees the records concurrent writers committed
-- while the first waited for them. The report is read once, and its parts
-- taken out once (not for each package).
-- +goose StatementBegin
CREATE FUNCTION stevedore_put_records(manifest text, report jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    doc    jsonb := report || '{}'::jsonb;
    pkgs   jsonb := coalesce(stevedore_report_part(doc, 'packages'), '{}'::jsonb);
    envs   jsonb := stevedore_report_part(doc, 'environments');
    dists  jsonb := stevedore_report_part(doc, 'distributions');
    repos  jsonb := stevedore_report_part(doc, 'repository');
    hashes bytea[];
BEGIN
    -- In hash order, so that concurrent writers lock in the same order.
    WITH r AS MATERIALIZED (SELECT * FROM stevedore_report_records(pkgs, envs, dists, repos)),
         ins AS (INSERT INTO affected_record (hash, name_lower, source_lower, body)
                 SELECT r.hash, r.name_lower, r.source_lower, r.body FROM r ORDER BY r.hash
                 ON CONFLICT (hash) DO NOTHING)
    SELECT coalesce(array_agg(r.hash), '{}') INTO hashes FROM r;
    INSERT INTO manifest_record (manifest_hash, record_ids)
    SELECT manifest, coalesce(array_agg(a.id ORDER BY a.id), '{}')
      FROM affected_record a WHERE a.hash = ANY (hashes)
    ON CONFLICT (manifest_hash) DO UPDATE SET record_ids = excluded.record_ids;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION stevedore_report_records_changed() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER index_report_records_inserted AFTER INSERT ON index_report
    FOR EACH ROW WHEN (NEW.state IN ('IndexFinished', 'IndexPartial'))
    EXECUTE FUNCTION stevedore_report_records_changed();
CREATE TRIGGER index_report_records_updated AFTER UPDATE OF state, report ON index_report
    FOR EACH ROW WHEN ((NEW.state IN ('IndexFinished', 'IndexPartial') OR OLD.state IN ('IndexFinished', 'IndexPartial'))
                       AND (NEW.state IS DISTINCT FROM OLD.state OR NEW.report IS DISTINCT FROM OLD.report))
    EXECUTE FUNCTION stevedore_report_records_changed();

SELECT stevedore_put_records(manifest_hash, report)
  FROM index_report WHERE state IN ('IndexFinished', 'IndexPartial');

DROP INDEX IF EXISTS index_report_package_names_idx;

-- +goose Down
-- The expression index of 00007 comes back (reports are read as before);
-- nothing of a report goes.
-- +goose StatementBegin
DO $$
BEGIN
    IF to_regprocedure('stevedore_report_package_names(jsonb)') IS NOT NULL THEN
        CREATE INDEX IF NOT EXISTS index_report_package_names_idx ON index_report
            USING gin (stevedore_report_package_names(report))
            WHERE state IN ('IndexFinished', 'IndexPartial');
    END IF;
END
$$;
-- +goose StatementEnd
DROP TRIGGER index_report_records_updated ON index_report;
DROP TRIGGER index_report_records_inserted ON index_report;
DROP FUNCTION stevedore_report_records_changed();
DROP FUNCTION stevedore_put_records(text, jsonb);
DROP FUNCTION stevedore_report_part(jsonb, text);
DROP FUNCTION stevedore_report_records(jsonb, jsonb, jsonb, jsonb);
DROP FUNCTION stevedore_record_environments(jsonb, jsonb, jsonb);
DROP FUNCTION stevedore_without_id(jsonb);
DROP TABLE manifest_record;
DROP TABLE affected_record;
