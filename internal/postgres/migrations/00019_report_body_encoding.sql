-- Stored answers are kept gzip compressed (internal/reportbody.EncodeStored):
-- encoding is the content coding of the chunks' bytes, 'identity' for the
-- answers stored before (which stay as they are and are served as before),
-- and identity_size the length of the JSON when it is not what is stored
-- (size is the length of the bytes stored, as before). Both are catalogue
-- changes: no row is rewritten.
--
-- The chunks of a compressed answer do not compress again: they are kept
-- out of line without Postgres' own compression (STORAGE EXTERNAL, for the
-- chunks written from now on; those stored before keep theirs).

-- +goose Up
ALTER TABLE report_body
    ADD COLUMN encoding text NOT NULL DEFAULT 'identity' CHECK (encoding IN ('identity', 'gzip')),
    ADD COLUMN identity_size bigint;
ALTER TABLE report_body_chunk ALTER COLUMN data SET STORAGE EXTERNAL;

-- +goose Down
-- The code of 00018 reads every answer as its JSON: the compressed ones go
-- (the API stores a report's answers again when it first serves it).
DELETE FROM report_body WHERE encoding <> 'identity';
ALTER TABLE report_body_chunk ALTER COLUMN data SET STORAGE EXTENDED;
ALTER TABLE report_body DROP COLUMN identity_size, DROP COLUMN encoding;
