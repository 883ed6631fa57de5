-- Connect sessions are bound to the browser that opened their connectUrl,
-- and accounts allow-list where connect flows may return (helper "security").

-- +goose Up
ALTER TABLE connect_sessions ADD COLUMN start_token_hash character varying(64) DEFAULT ''::character varying NOT NULL;
ALTER TABLE connect_sessions ADD COLUMN browser_hash character varying(64) DEFAULT ''::character varying NOT NULL;
CREATE INDEX idx_connect_sessions_start_token ON connect_sessions USING btree (start_token_hash);
ALTER TABLE accounts ADD COLUMN allowed_redirect_origins text DEFAULT '[]'::text NOT NULL;

-- +goose Down
ALTER TABLE accounts DROP COLUMN allowed_redirect_origins;
DROP INDEX idx_connect_sessions_start_token;
ALTER TABLE connect_sessions DROP COLUMN browser_hash;
ALTER TABLE connect_sessions DROP COLUMN start_token_hash;
