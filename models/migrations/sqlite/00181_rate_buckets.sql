-- Shared token buckets pacing provider requests (helper "polling").

-- +goose Up
CREATE TABLE `rate_buckets` (`key` text,`tokens` real NOT NULL,`updated_at` datetime NOT NULL,PRIMARY KEY (`key`));

-- +goose Down
DROP TABLE `rate_buckets`;
