-- Master keys the database knows, each with a check value, so a process with a
-- wrong key refuses to start, and key rotation knows which keys are in use.

-- +goose Up
CREATE TABLE `master_keys` (`id` text NOT NULL, `check_value` blob NOT NULL, `status` text NOT NULL, `created_at` datetime NOT NULL, `retired_at` datetime, PRIMARY KEY (`id`));

-- +goose Down
DROP TABLE `master_keys`;
