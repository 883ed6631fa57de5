-- Batched capture (helper "capture"): inbox items carry the key of the one
-- record they change, and the claim's queries have indexes of their own
-- (pending items in received order; in-flight items by record; processed
-- items for pruning).

-- +goose Up
ALTER TABLE `inbox_items` ADD `order_key` text NOT NULL DEFAULT "";
CREATE INDEX `idx_inbox_pending` ON `inbox_items`(`received_at`,`id`) WHERE `processed_at` IS NULL;
CREATE INDEX `idx_inbox_pending_key` ON `inbox_items`(`order_key`) WHERE `processed_at` IS NULL;
CREATE INDEX `idx_inbox_processed` ON `inbox_items`(`processed_at`) WHERE `processed_at` IS NOT NULL;
DROP INDEX IF EXISTS `idx_inbox_items_processed_at`;
DROP INDEX IF EXISTS `idx_inbox_items_next_attempt_at`;

-- +goose Down
CREATE INDEX `idx_inbox_items_next_attempt_at` ON `inbox_items`(`next_attempt_at`);
CREATE INDEX `idx_inbox_items_processed_at` ON `inbox_items`(`processed_at`);
DROP INDEX `idx_inbox_processed`;
DROP INDEX `idx_inbox_pending_key`;
DROP INDEX `idx_inbox_pending`;
ALTER TABLE `inbox_items` DROP COLUMN `order_key`;
