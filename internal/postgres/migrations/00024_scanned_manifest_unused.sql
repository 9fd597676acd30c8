-- scanned_manifest recorded, per manifest, the scanners that made its
-- final report: 16 rows per manifest (5 % of the database at 10,000
-- manifests), read by nothing. Which scanner set made a report is its
-- scanner_state (the dispatcher's current check and the re-index sweep
-- read that). This release no longer writes it.
--
-- Emptied, not dropped: a fleet is upgraded one replica at a time, and
-- workers of the release before this one insert into it in their final
-- write; with the table gone, every job they finish would fail until they
-- were replaced. What they still write is a few rows, read by nothing. A
-- later release, once no binary before this one can be running, drops it.
--
-- Independent of the other migrations' order beyond 00001.

-- +goose Up
TRUNCATE scanned_manifest;

-- +goose Down
-- Nothing: the code before this writes the table and never reads it.
SELECT 1;
