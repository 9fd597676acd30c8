-- The Manager instance (one per process, random) that holds a lease, so that
-- a holder can tell its own stale lease (taken by an earlier run that it no
-- longer tracks, for example after a Postgres restart) from a lease another
-- process, or another live run of its own, holds.

-- +goose Up
ALTER TABLE lease ADD COLUMN instance text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE lease DROP COLUMN instance;
