-- A webhook replay of a time range reads the account's events by creation
-- time (helper "apiplus").

-- +goose Up
CREATE INDEX idx_events_account_created ON events (account_id, created_at, seq);

-- +goose Down
DROP INDEX idx_events_account_created;
