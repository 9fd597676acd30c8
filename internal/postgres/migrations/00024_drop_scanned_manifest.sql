-- scanned_manifest recorded, per manifest, the scanners that made its
-- final report: 16 rows per manifest (5 % of the database at 10,000
-- manifests), read by nothing. Which scanner set made a report is its
-- scanner_state (the dispatcher's current check and the re-index sweep
-- read that).
--
-- Independent of the other migrations' order beyond 00001.

-- +goose Up
DROP TABLE scanned_manifest;

-- +goose Down
-- Empty: the code before this writes the table and never reads it.
CREATE TABLE scanned_manifest (
    manifest_id bigint NOT NULL REFERENCES manifest (id) ON DELETE CASCADE,
    scanner_id  bigint NOT NULL REFERENCES scanner (id) ON DELETE CASCADE,
    PRIMARY KEY (manifest_id, scanner_id)
);
