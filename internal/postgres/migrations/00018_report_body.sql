-- The answers of a terminal report, encoded as the API serves them (see
-- internal/api/reportbody): per view, its entity tag and size, and the bytes in
-- chunks of at most 256 KiB, so that a GET streams a report chunk by chunk
-- and a 304 reads no chunk. Written in the transaction that writes the
-- report; report_updated_at is the updated_at of the report encoded, and an
-- encoding whose report was written again since is not served.

-- +goose Up
CREATE TABLE report_body (
    id                bigserial PRIMARY KEY,
    manifest_hash     text NOT NULL REFERENCES index_report (manifest_hash) ON DELETE CASCADE,
    view              text NOT NULL,
    state             text NOT NULL,
    etag              text NOT NULL,
    size              bigint NOT NULL,
    chunks            integer NOT NULL,
    report_updated_at timestamptz NOT NULL,
    UNIQUE (manifest_hash, view)
);

CREATE TABLE report_body_chunk (
    body_id bigint NOT NULL REFERENCES report_body (id) ON DELETE CASCADE,
    seq     integer NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (body_id, seq)
);

-- +goose Down
DROP TABLE report_body_chunk;
DROP TABLE report_body;
