-- A poll interval set with an admin key is applied as given (helper "polling").

-- +goose Up
ALTER TABLE `connections` ADD `poll_interval_by_admin` numeric NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE `connections` DROP COLUMN `poll_interval_by_admin`;
