-- Batched capture (helper "capture"): only leased items keep a lease token
-- (committing or failing an item clears it), so the in-flight check of a
-- claim needs an index of those alone.

-- +goose Up
DROP INDEX IF EXISTS `idx_inbox_pending_key`;
CREATE INDEX `idx_inbox_inflight` ON `inbox_items`(`order_key`) WHERE `lease_token` <> '';

-- +goose Down
DROP INDEX `idx_inbox_inflight`;
CREATE INDEX `idx_inbox_pending_key` ON `inbox_items`(`order_key`) WHERE `processed_at` IS NULL;
