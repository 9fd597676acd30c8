-- A usable report's records (00023) are made by its writer, which knows
-- its packages, and handed to stevedore_put_record_list as arrays: each
-- record's hash, package name, source package name (NULL without a source)
-- and body, the body being the text Postgres prints for the record
-- stevedore_report_records would build from the report, and the hash the
-- sha256 of that text (postgres.reportRecords; a conformance test holds the
-- two the same). Only the records not stored yet are parsed and inserted;
-- the others are found by their hash. Taking a 1,000-package report apart
-- in SQL cost about two thirds of its final write.
--
-- The names are lowered here, by Postgres's lower() as before, so that the
-- affected query's lower() finds them. stevedore_put_records stays, for
-- the trigger (rows that hold their content) and for the release before
-- this one during a rolling upgrade.
-- Independent of the other migrations' order beyond 00023.

-- +goose Up
-- Two statements, as stevedore_put_records: the second sees the records
-- concurrent writers committed while the first waited for them; inserts in
-- hash order, so that concurrent writers lock in the same order. The
-- records stored already are found through the hash's index (= ANY), not
-- by an anti-join, which the planner may run as a scan of the whole table.
-- +goose StatementBegin
CREATE FUNCTION stevedore_put_record_list(manifest text, hashes bytea[], names text[], sources text[], bodies text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    known bytea[];
BEGIN
    SELECT coalesce(array_agg(a.hash), '{}') INTO known FROM affected_record a WHERE a.hash = ANY (hashes);
    IF cardinality(known) < cardinality(hashes) THEN
        INSERT INTO affected_record (hash, name_lower, source_lower, body)
        SELECT r.hash, lower(r.name), nullif(lower(r.source), lower(r.name)), r.body::jsonb
          FROM unnest(hashes, names, sources, bodies) AS r(hash, name, source, body)
         WHERE NOT EXISTS (SELECT FROM unnest(known) AS k(hash) WHERE k.hash = r.hash)
         ORDER BY r.hash
        ON CONFLICT (hash) DO NOTHING;
    END IF;
    -- A list that has not changed (a report indexed again) is left as it
    -- is: no new row version, no GIN entries for its ids.
    INSERT INTO manifest_record AS m (manifest_hash, record_ids)
    SELECT manifest, coalesce(array_agg(a.id ORDER BY a.id), '{}')
      FROM affected_record a WHERE a.hash = ANY (hashes)
    ON CONFLICT (manifest_hash) DO UPDATE SET record_ids = excluded.record_ids
     WHERE m.record_ids IS DISTINCT FROM excluded.record_ids;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION stevedore_put_record_list(text, bytea[], text[], text[], text[]);
