-- Shared token buckets pacing provider requests (helper "polling").

-- +goose Up
CREATE TABLE rate_buckets (
    key character varying(400) NOT NULL,
    tokens double precision NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    PRIMARY KEY (key)
);

-- +goose Down
DROP TABLE rate_buckets;
