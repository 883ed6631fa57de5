-- Deleting a connection records its snapshots for removal here; the
-- maintenance job deletes them in batches, outside the request.

-- +goose Up
CREATE TABLE `snapshot_sweeps` (`connection_id` text NOT NULL, `requested_at` datetime NOT NULL, PRIMARY KEY (`connection_id`));

-- +goose Down
DROP TABLE `snapshot_sweeps`;
