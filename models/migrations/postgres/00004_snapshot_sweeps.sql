-- Deleting a connection records its snapshots for removal here; the
-- maintenance job deletes them in batches, outside the request.

-- +goose Up
CREATE TABLE snapshot_sweeps (
    connection_id character varying(64) NOT NULL,
    requested_at timestamp with time zone NOT NULL,
    CONSTRAINT snapshot_sweeps_pkey PRIMARY KEY (connection_id)
);

-- +goose Down
DROP TABLE snapshot_sweeps;
