-- API keys get a caller's label and the time they last authenticated (helper "security").

-- +goose Up
ALTER TABLE api_keys ADD COLUMN name character varying(200) DEFAULT ''::character varying NOT NULL;
ALTER TABLE api_keys ADD COLUMN last_used_at timestamp with time zone;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN last_used_at;
ALTER TABLE api_keys DROP COLUMN name;
