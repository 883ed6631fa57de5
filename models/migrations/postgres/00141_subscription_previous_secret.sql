-- A subscription keeps its previous hmac/standard secret signing beside the
-- new one for an overlap window after rotate-secret (helper "security").

-- +goose Up
ALTER TABLE subscriptions ADD COLUMN prev_secret_enc bytea;
ALTER TABLE subscriptions ADD COLUMN prev_secret_until timestamp with time zone;

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN prev_secret_until;
ALTER TABLE subscriptions DROP COLUMN prev_secret_enc;
