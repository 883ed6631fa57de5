-- A subscription keeps its previous hmac/standard secret signing beside the
-- new one for an overlap window after rotate-secret (helper "security").

-- +goose Up
ALTER TABLE `subscriptions` ADD `prev_secret_enc` blob;
ALTER TABLE `subscriptions` ADD `prev_secret_until` datetime;

-- +goose Down
ALTER TABLE `subscriptions` DROP COLUMN `prev_secret_until`;
ALTER TABLE `subscriptions` DROP COLUMN `prev_secret_enc`;
