-- Per-record delivery ordering for subscriptions that ask for it (helper "polling").

-- +goose Up
ALTER TABLE subscriptions ADD COLUMN ordering character varying(16) DEFAULT ''::character varying NOT NULL;
ALTER TABLE deliveries ADD COLUMN order_key character varying(400) DEFAULT ''::character varying NOT NULL;
ALTER TABLE deliveries ADD COLUMN order_seq bigint DEFAULT 0 NOT NULL;
CREATE INDEX idx_deliveries_order ON deliveries (subscription_id, order_key, order_seq) WHERE order_key <> '' AND status IN ('pending', 'failed');

-- +goose Down
DROP INDEX idx_deliveries_order;
ALTER TABLE deliveries DROP COLUMN order_seq;
ALTER TABLE deliveries DROP COLUMN order_key;
ALTER TABLE subscriptions DROP COLUMN ordering;
