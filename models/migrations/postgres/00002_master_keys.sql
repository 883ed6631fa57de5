-- Master keys the database knows, each with a check value, so a process with a
-- wrong key refuses to start, and key rotation knows which keys are in use.

-- +goose Up
CREATE TABLE master_keys (
    id character varying(16) NOT NULL,
    check_value bytea NOT NULL,
    status character varying(16) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    retired_at timestamp with time zone,
    CONSTRAINT master_keys_pkey PRIMARY KEY (id)
);

-- +goose Down
DROP TABLE master_keys;
