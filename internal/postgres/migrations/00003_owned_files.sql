-- Files owned by OS packages: per (layer, scanner), the paths an OS package
-- scanner (dpkg, rpm) says its packages own and that a language scanner could
-- also report. The coalescer drops a language package read from such a path,
-- so that a Python module installed by dpkg or rpm is reported once, by its
-- OS package. Removed with the scan result they belong to.

-- +goose Up
CREATE TABLE owned_files (
    layer_id   bigint NOT NULL,
    scanner_id bigint NOT NULL,
    -- Clean relative paths, sorted, without duplicates.
    paths      text[] NOT NULL,
    PRIMARY KEY (layer_id, scanner_id),
    FOREIGN KEY (layer_id, scanner_id) REFERENCES scanned_layer (layer_id, scanner_id) ON DELETE CASCADE
);

-- +goose Down
DROP TABLE owned_files;
