-- Indexes that keep maintenance and history queries bounded: retention walks
-- old attempts, finished deliveries, events and sync runs in time order, and
-- a webhook's last attempt is one index probe.

-- +goose Up
CREATE INDEX idx_attempts_attempted_at ON attempts (attempted_at);
CREATE INDEX idx_attempts_sub_time ON attempts (subscription_id, attempted_at, id);
DROP INDEX idx_attempts_subscription_id;
CREATE INDEX idx_deliveries_finished ON deliveries (created_at) WHERE status IN ('succeeded', 'dead');
CREATE INDEX idx_events_created ON events (created_at, id);
CREATE INDEX idx_sync_runs_started ON sync_runs (started_at);

-- +goose Down
DROP INDEX idx_sync_runs_started;
DROP INDEX idx_events_created;
DROP INDEX idx_deliveries_finished;
CREATE INDEX `idx_attempts_subscription_id` ON `attempts`(`subscription_id`);
DROP INDEX idx_attempts_sub_time;
DROP INDEX idx_attempts_attempted_at;
