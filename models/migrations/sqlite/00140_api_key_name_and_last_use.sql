-- API keys get a caller's label and the time they last authenticated (helper "security").

-- +goose Up
ALTER TABLE `api_keys` ADD `name` text NOT NULL DEFAULT "";
ALTER TABLE `api_keys` ADD `last_used_at` datetime;

-- +goose Down
ALTER TABLE `api_keys` DROP COLUMN `last_used_at`;
ALTER TABLE `api_keys` DROP COLUMN `name`;
