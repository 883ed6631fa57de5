-- Sandbox app writes and polls (helper "capture"): the newest change of a
-- connection and the listing by (modified_at, remote_id) are index-backed.

-- +goose Up
CREATE INDEX `idx_sandbox_changes` ON `sandbox_records`(`connection_id`,`object`,`modified_at`,`remote_id`);
CREATE INDEX `idx_sandbox_newest` ON `sandbox_records`(`connection_id`,`modified_at`);
DROP INDEX IF EXISTS `idx_sandbox_records_modified_at`;

-- +goose Down
CREATE INDEX `idx_sandbox_records_modified_at` ON `sandbox_records`(`modified_at`);
DROP INDEX `idx_sandbox_newest`;
DROP INDEX `idx_sandbox_changes`;
