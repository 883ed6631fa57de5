-- A poll interval set with an admin key is applied as given (helper "polling").

-- +goose Up
ALTER TABLE connections ADD COLUMN poll_interval_by_admin boolean DEFAULT false NOT NULL;

-- +goose Down
ALTER TABLE connections DROP COLUMN poll_interval_by_admin;
