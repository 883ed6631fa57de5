-- Per-record delivery ordering for subscriptions that ask for it (helper "polling").

-- +goose Up
ALTER TABLE `subscriptions` ADD `ordering` text NOT NULL DEFAULT '';
ALTER TABLE `deliveries` ADD `order_key` text NOT NULL DEFAULT '';
ALTER TABLE `deliveries` ADD `order_seq` integer NOT NULL DEFAULT 0;
CREATE INDEX idx_deliveries_order ON deliveries (subscription_id, order_key, order_seq) WHERE order_key <> '' AND status IN ('pending', 'failed');

-- +goose Down
DROP INDEX idx_deliveries_order;
ALTER TABLE `deliveries` DROP COLUMN `order_seq`;
ALTER TABLE `deliveries` DROP COLUMN `order_key`;
ALTER TABLE `subscriptions` DROP COLUMN `ordering`;
