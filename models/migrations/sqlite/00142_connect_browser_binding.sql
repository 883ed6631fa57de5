-- Connect sessions are bound to the browser that opened their connectUrl,
-- and accounts allow-list where connect flows may return (helper "security").

-- +goose Up
ALTER TABLE `connect_sessions` ADD `start_token_hash` text NOT NULL DEFAULT "";
ALTER TABLE `connect_sessions` ADD `browser_hash` text NOT NULL DEFAULT "";
CREATE INDEX `idx_connect_sessions_start_token` ON `connect_sessions`(`start_token_hash`);
ALTER TABLE `accounts` ADD `allowed_redirect_origins` text NOT NULL DEFAULT "[]";

-- +goose Down
ALTER TABLE `accounts` DROP COLUMN `allowed_redirect_origins`;
DROP INDEX `idx_connect_sessions_start_token`;
ALTER TABLE `connect_sessions` DROP COLUMN `browser_hash`;
ALTER TABLE `connect_sessions` DROP COLUMN `start_token_hash`;
