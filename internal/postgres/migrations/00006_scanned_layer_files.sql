-- The files each scanner was given in a layer: for a package scanner, the
-- package databases present in the layer, even those that held no package
-- (so that a database rewritten empty hides the lower copies), and the
-- basis for carrying empty results over to a new scanner version.
--
-- IF NOT EXISTS: for a while this column was added by editing 00001, so some
-- databases already have it.

-- +goose Up
ALTER TABLE scanned_layer ADD COLUMN IF NOT EXISTS files text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE scanned_layer DROP COLUMN files;
