-- Registry webhooks (internal/api/webhooks): image references whose registry lookup
-- failed when their event arrived (a Quay tag that could not be resolved to
-- a digest, a manifest the registry did not serve in time). They are kept
-- here, not lost, and retried in the background with backoff; a row is
-- deleted when its retry succeeds, and kept with given_up_at set after the
-- last allowed attempt.

-- +goose Up
CREATE TABLE webhook_pending (
    id           bigserial PRIMARY KEY,
    -- The endpoint the event came to: distribution, harbor, quay, zot, ghcr.
    source       text NOT NULL,
    -- The image on the pull host: host/repo:tag or host/repo@sha256:...
    reference    text NOT NULL UNIQUE,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text NOT NULL DEFAULT '',
    -- When the next attempt is due; a replica that takes a row moves it
    -- ahead while it works, so that a crash only delays the retry.
    next_attempt timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    given_up_at  timestamptz
);
CREATE INDEX webhook_pending_due_idx ON webhook_pending (next_attempt) WHERE given_up_at IS NULL;

-- +goose Down
DROP TABLE webhook_pending;
