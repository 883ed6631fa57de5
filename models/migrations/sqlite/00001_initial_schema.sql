-- Version 1: the schema of the last release that used AutoMigrate (old migrations 1-5),
-- frozen from sqlite3 .schema of a database it created. Never edit; add a new version.

-- +goose Up
CREATE TABLE `accounts` (`id` text,`name` text NOT NULL,`default_poll_interval` integer NOT NULL DEFAULT 0,`min_poll_interval` integer NOT NULL DEFAULT 0,`created_at` datetime,`updated_at` datetime,PRIMARY KEY (`id`));
CREATE TABLE `api_keys` (`id` text,`account_id` text,`role` text NOT NULL,`hash` text NOT NULL,`prefix` text NOT NULL,`created_at` datetime,`revoked_at` datetime,PRIMARY KEY (`id`));
CREATE UNIQUE INDEX `idx_api_keys_hash` ON `api_keys`(`hash`);
CREATE INDEX `idx_api_keys_account_id` ON `api_keys`(`account_id`);
CREATE TABLE `snapshots` (`connection_id` text,`object` text,`remote_id` text,`content_hash` text NOT NULL,`payload` blob,`remote_updated_at` datetime NOT NULL,`deleted` numeric NOT NULL DEFAULT false,`scan_generation` integer NOT NULL DEFAULT 0,`updated_at` datetime,PRIMARY KEY (`connection_id`,`object`,`remote_id`));
CREATE TABLE `subscriptions` (`id` text,`account_id` text NOT NULL,`address` text NOT NULL,`topics` text NOT NULL,`active` numeric NOT NULL,`disabled_reason` text,`disabled_at` datetime,`scheme` text NOT NULL,`secret_enc` blob,`max_retries` integer NOT NULL,`backoff_multiplier` real NOT NULL,`schedule` text NOT NULL DEFAULT "",`timeout_seconds` integer NOT NULL,`rate_limit` integer NOT NULL DEFAULT 0,`consecutive_failures` integer NOT NULL DEFAULT 0,`failing_since` datetime,`circuit_open_until` datetime,`created_at` datetime,`updated_at` datetime,PRIMARY KEY (`id`));
CREATE INDEX `idx_subscriptions_account_id` ON `subscriptions`(`account_id`);
CREATE TABLE `events` (`id` text,`account_id` text NOT NULL,`seq` integer NOT NULL,`topic` text NOT NULL,`update_type` text NOT NULL,`connection_id` text,`body` blob NOT NULL,`created_at` datetime NOT NULL,PRIMARY KEY (`id`));
CREATE INDEX `idx_events_connection_id` ON `events`(`connection_id`);
CREATE UNIQUE INDEX `idx_events_account_seq` ON `events`(`account_id`,`seq`);
CREATE TABLE `event_counters` (`account_id` text,`seq` integer NOT NULL,PRIMARY KEY (`account_id`));
CREATE TABLE `deliveries` (`id` text,`account_id` text NOT NULL,`event_id` text NOT NULL,`subscription_id` text NOT NULL,`status` text NOT NULL,`next_attempt_at` datetime NOT NULL,`lease_token` text NOT NULL DEFAULT "",`attempts` integer NOT NULL DEFAULT 0,`retries` integer NOT NULL DEFAULT 0,`last_status_code` integer NOT NULL DEFAULT 0,`last_error` text,`last_attempt_at` datetime,`created_at` datetime NOT NULL,`updated_at` datetime,PRIMARY KEY (`id`));
CREATE INDEX `idx_deliveries_due` ON `deliveries`(`status`,`next_attempt_at`);
CREATE INDEX `idx_deliveries_sub_status` ON `deliveries`(`subscription_id`,`status`);
CREATE INDEX `idx_deliveries_event_id` ON `deliveries`(`event_id`);
CREATE INDEX `idx_deliveries_account_id` ON `deliveries`(`account_id`);
CREATE TABLE `attempts` (`id` text,`delivery_id` text NOT NULL,`subscription_id` text NOT NULL,`account_id` text NOT NULL,`number` integer NOT NULL,`attempted_at` datetime NOT NULL,`status_code` integer NOT NULL DEFAULT 0,`response_time_ms` integer NOT NULL DEFAULT 0,`response_body` text,`error` text,PRIMARY KEY (`id`));
CREATE INDEX `idx_attempts_subscription_id` ON `attempts`(`subscription_id`);
CREATE INDEX `idx_attempts_delivery_id` ON `attempts`(`delivery_id`);
CREATE TABLE `signing_keys` (`id` text,`account_id` text NOT NULL,`private_key_enc` blob NOT NULL,`public_key_pem` text NOT NULL,`created_at` datetime,`retired_at` datetime,PRIMARY KEY (`id`));
CREATE INDEX `idx_signing_keys_account_id` ON `signing_keys`(`account_id`);
CREATE TABLE `connections` (`id` text,`account_id` text NOT NULL,`app` text NOT NULL,`user_id` text NOT NULL,`user_name` text,`status` text NOT NULL,`external_id` text,`credentials_enc` blob,`metadata` text NOT NULL DEFAULT "{}",`poll_interval` integer NOT NULL DEFAULT 0,`next_sync_at` datetime NOT NULL,`lease_token` text NOT NULL DEFAULT "",`last_sync_at` datetime,`last_error` text,`cursors` text NOT NULL DEFAULT "{}",`initial_sync_done` numeric NOT NULL DEFAULT false,`emit_backfill` numeric NOT NULL DEFAULT false,`include_raw` numeric NOT NULL DEFAULT false,`generation` integer NOT NULL DEFAULT 0,`created_at` datetime,`updated_at` datetime,PRIMARY KEY (`id`));
CREATE INDEX `idx_connections_next_sync_at` ON `connections`(`next_sync_at`);
CREATE INDEX `idx_connections_app_external` ON `connections`(`app`,`external_id`);
CREATE INDEX `idx_connections_account_user` ON `connections`(`account_id`,`user_id`);
CREATE TABLE `connect_sessions` (`id` text,`account_id` text NOT NULL,`app` text NOT NULL,`user_id` text NOT NULL,`user_name` text,`redirect_url` text NOT NULL,`state` text NOT NULL,`verifier_enc` blob NOT NULL,`params` text NOT NULL DEFAULT "{}",`expires_at` datetime NOT NULL,`used_at` datetime,`connection_id` text,`created_at` datetime,PRIMARY KEY (`id`));
CREATE UNIQUE INDEX `idx_connect_sessions_state` ON `connect_sessions`(`state`);
CREATE INDEX `idx_connect_sessions_account_id` ON `connect_sessions`(`account_id`);
CREATE TABLE `inbox_items` (`id` text,`app` text NOT NULL,`dedup_key` text NOT NULL,`method` text NOT NULL,`url` text NOT NULL,`header` text NOT NULL,`body` blob NOT NULL,`received_at` datetime NOT NULL,`processed_at` datetime,`next_attempt_at` datetime NOT NULL,`lease_token` text NOT NULL DEFAULT "",`attempts` integer NOT NULL DEFAULT 0,`last_error` text,PRIMARY KEY (`id`));
CREATE INDEX `idx_inbox_items_next_attempt_at` ON `inbox_items`(`next_attempt_at`);
CREATE INDEX `idx_inbox_items_processed_at` ON `inbox_items`(`processed_at`);
CREATE UNIQUE INDEX `idx_inbox_dedup` ON `inbox_items`(`app`,`dedup_key`);
CREATE TABLE `sync_runs` (`id` text,`account_id` text NOT NULL,`connection_id` text NOT NULL,`started_at` datetime NOT NULL,`finished_at` datetime,`status` text NOT NULL,`initial` numeric NOT NULL DEFAULT false,`created` integer NOT NULL DEFAULT 0,`updated` integer NOT NULL DEFAULT 0,`deleted` integer NOT NULL DEFAULT 0,`scanned` integer NOT NULL DEFAULT 0,`error` text,PRIMARY KEY (`id`));
CREATE INDEX `idx_sync_runs_connection_id` ON `sync_runs`(`connection_id`);
CREATE TABLE `sandbox_records` (`connection_id` text,`object` text,`remote_id` text,`data` text NOT NULL,`deleted` numeric NOT NULL DEFAULT false,`version` integer NOT NULL,`modified_at` datetime NOT NULL,`created_at` datetime NOT NULL,PRIMARY KEY (`connection_id`,`object`,`remote_id`));
CREATE INDEX `idx_sandbox_records_modified_at` ON `sandbox_records`(`modified_at`);
CREATE INDEX idx_deliveries_queued ON deliveries (next_attempt_at) WHERE status IN ('pending', 'failed');

-- +goose Down
DROP TABLE `sync_runs`;
DROP TABLE `sandbox_records`;
DROP TABLE `inbox_items`;
DROP TABLE `connect_sessions`;
DROP TABLE `connections`;
DROP TABLE `snapshots`;
DROP TABLE `signing_keys`;
DROP TABLE `attempts`;
DROP TABLE `deliveries`;
DROP TABLE `event_counters`;
DROP TABLE `events`;
DROP TABLE `subscriptions`;
DROP TABLE `api_keys`;
DROP TABLE `accounts`;
DROP TABLE IF EXISTS schema_migrations;
