-- Sandbox app writes and polls (helper "capture"): the newest change of a
-- connection and the listing by (modified_at, remote_id) are index-backed
-- without planner statistics.

-- +goose Up
CREATE INDEX idx_sandbox_changes ON sandbox_records USING btree (connection_id, object, modified_at, remote_id);
CREATE INDEX idx_sandbox_newest ON sandbox_records USING btree (connection_id, modified_at);
DROP INDEX IF EXISTS idx_sandbox_records_modified_at;

-- +goose Down
CREATE INDEX idx_sandbox_records_modified_at ON sandbox_records USING btree (modified_at);
DROP INDEX idx_sandbox_newest;
DROP INDEX idx_sandbox_changes;
