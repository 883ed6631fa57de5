-- A subscription may be scoped to connections, users and dataPayload field
-- values, and may hold its deliveries while paused (helper "apiplus").

-- +goose Up
ALTER TABLE `subscriptions` ADD `connection_ids` text NOT NULL DEFAULT '';
ALTER TABLE `subscriptions` ADD `user_ids` text NOT NULL DEFAULT '';
ALTER TABLE `subscriptions` ADD `filters` text NOT NULL DEFAULT '';
ALTER TABLE `subscriptions` ADD `pause_mode` varchar(16) NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE `subscriptions` DROP COLUMN `pause_mode`;
ALTER TABLE `subscriptions` DROP COLUMN `filters`;
ALTER TABLE `subscriptions` DROP COLUMN `user_ids`;
ALTER TABLE `subscriptions` DROP COLUMN `connection_ids`;
