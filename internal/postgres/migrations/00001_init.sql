-- Stevedore's schema. Everything is content-addressed: manifests and layers
-- by digest, scanners by (name, version, kind), packages, distributions and
-- repositories by a hash of their fields. Scan results are recorded per
-- (layer, scanner), so a layer scanned once by the current scanners is never
-- read again, whichever manifest it belongs to.

-- +goose Up
CREATE TABLE manifest (
    id          bigserial PRIMARY KEY,
    hash        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE layer (
    id          bigserial PRIMARY KEY,
    hash        text NOT NULL UNIQUE,
    -- Set when the layer's bytes were read: the paths it deletes from lower
    -- layers and the directories it makes opaque. NULL: never read.
    whiteouts   text[],
    opaque_dirs text[],
    read_at     timestamptz
);

CREATE TABLE manifest_layer (
    manifest_id bigint NOT NULL REFERENCES manifest (id) ON DELETE CASCADE,
    layer_id    bigint NOT NULL REFERENCES layer (id),
    position    integer NOT NULL,
    PRIMARY KEY (manifest_id, position)
);
CREATE INDEX manifest_layer_layer_idx ON manifest_layer (layer_id);

CREATE TABLE scanner (
    id      bigserial PRIMARY KEY,
    name    text NOT NULL,
    version text NOT NULL,
    kind    text NOT NULL,
    UNIQUE (name, version, kind)
);

-- A row means: this scanner read this layer and its results are stored
-- (possibly none).
CREATE TABLE scanned_layer (
    layer_id   bigint NOT NULL REFERENCES layer (id) ON DELETE CASCADE,
    scanner_id bigint NOT NULL REFERENCES scanner (id) ON DELETE CASCADE,
    scanned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (layer_id, scanner_id)
);
CREATE INDEX scanned_layer_scanner_idx ON scanned_layer (scanner_id);

CREATE TABLE scanned_manifest (
    manifest_id bigint NOT NULL REFERENCES manifest (id) ON DELETE CASCADE,
    scanner_id  bigint NOT NULL REFERENCES scanner (id) ON DELETE CASCADE,
    PRIMARY KEY (manifest_id, scanner_id)
);

CREATE TABLE package (
    id                 bigserial PRIMARY KEY,
    key                bytea NOT NULL UNIQUE,
    name               text NOT NULL,
    version            text NOT NULL,
    kind               text NOT NULL,
    arch               text NOT NULL,
    module             text NOT NULL,
    normalized_version text NOT NULL,
    cpe                text NOT NULL,
    purl               text NOT NULL,
    source_name        text NOT NULL,
    source_version     text NOT NULL
);

CREATE TABLE package_scanartifact (
    layer_id        bigint NOT NULL REFERENCES layer (id) ON DELETE CASCADE,
    scanner_id      bigint NOT NULL REFERENCES scanner (id) ON DELETE CASCADE,
    package_id      bigint NOT NULL REFERENCES package (id),
    package_db      text NOT NULL,
    repository_hint text NOT NULL,
    filepath        text NOT NULL,
    PRIMARY KEY (layer_id, scanner_id, package_id, package_db, filepath)
);

CREATE TABLE dist (
    id                bigserial PRIMARY KEY,
    key               bytea NOT NULL UNIQUE,
    did               text NOT NULL,
    name              text NOT NULL,
    version           text NOT NULL,
    version_code_name text NOT NULL,
    version_id        text NOT NULL,
    arch              text NOT NULL,
    cpe               text NOT NULL,
    pretty_name       text NOT NULL
);

CREATE TABLE dist_scanartifact (
    layer_id   bigint NOT NULL REFERENCES layer (id) ON DELETE CASCADE,
    scanner_id bigint NOT NULL REFERENCES scanner (id) ON DELETE CASCADE,
    dist_id    bigint NOT NULL REFERENCES dist (id),
    PRIMARY KEY (layer_id, scanner_id, dist_id)
);

CREATE TABLE repo (
    id   bigserial PRIMARY KEY,
    key  bytea NOT NULL UNIQUE,
    name text NOT NULL,
    rkey text NOT NULL,
    uri  text NOT NULL,
    cpe  text NOT NULL
);

CREATE TABLE repo_scanartifact (
    layer_id   bigint NOT NULL REFERENCES layer (id) ON DELETE CASCADE,
    scanner_id bigint NOT NULL REFERENCES scanner (id) ON DELETE CASCADE,
    repo_id    bigint NOT NULL REFERENCES repo (id),
    PRIMARY KEY (layer_id, scanner_id, repo_id)
);

-- One report per manifest: the Clair IndexReport as JSON, its state, the
-- scanner-set state that made it and the lease fence of the writer (0: the
-- dispatcher, which writes only the first "queued" row).
CREATE TABLE index_report (
    manifest_hash text PRIMARY KEY,
    state         text NOT NULL,
    scanner_state text NOT NULL,
    report        jsonb NOT NULL,
    fence         bigint NOT NULL DEFAULT 0,
    attempt       integer NOT NULL DEFAULT 0,
    error         text NOT NULL DEFAULT '',
    next_retry    timestamptz,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX index_report_state_idx ON index_report (state);

-- Leases: one row per manifest digest being worked on. The fence comes from
-- one global sequence, so a later holder always has a larger fence than any
-- earlier one, and a write checked against the lease row refuses a stale
-- holder. All times come from the database's clock.
CREATE SEQUENCE lease_fence_seq;
CREATE TABLE lease (
    digest      text PRIMARY KEY,
    holder      text NOT NULL,
    fence       bigint NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE lease;
DROP SEQUENCE lease_fence_seq;
DROP TABLE index_report;
DROP TABLE repo_scanartifact;
DROP TABLE repo;
DROP TABLE dist_scanartifact;
DROP TABLE dist;
DROP TABLE package_scanartifact;
DROP TABLE package;
DROP TABLE scanned_manifest;
DROP TABLE scanned_layer;
DROP TABLE scanner;
DROP TABLE manifest_layer;
DROP TABLE layer;
DROP TABLE manifest;
