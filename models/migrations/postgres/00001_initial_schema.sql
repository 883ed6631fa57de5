-- Version 1: the schema of the last release that used AutoMigrate (old migrations 1-5),
-- frozen from pg_dump --schema-only of a database it created. Never edit; add a new version.

-- +goose Up
CREATE TABLE accounts (
    id character varying(40) NOT NULL,
    name character varying(200) NOT NULL,
    default_poll_interval bigint DEFAULT 0 NOT NULL,
    min_poll_interval bigint DEFAULT 0 NOT NULL,
    created_at timestamp with time zone,
    updated_at timestamp with time zone
);
CREATE TABLE api_keys (
    id character varying(40) NOT NULL,
    account_id character varying(40),
    role character varying(10) NOT NULL,
    hash character varying(64) NOT NULL,
    prefix character varying(24) NOT NULL,
    created_at timestamp with time zone,
    revoked_at timestamp with time zone
);
CREATE TABLE attempts (
    id character varying(40) NOT NULL,
    delivery_id character varying(40) NOT NULL,
    subscription_id character varying(40) NOT NULL,
    account_id character varying(40) NOT NULL,
    number bigint NOT NULL,
    attempted_at timestamp with time zone NOT NULL,
    status_code bigint DEFAULT 0 NOT NULL,
    response_time_ms bigint DEFAULT 0 NOT NULL,
    response_body character varying(8192),
    error character varying(1000)
);
CREATE TABLE connect_sessions (
    id character varying(40) NOT NULL,
    account_id character varying(40) NOT NULL,
    app character varying(40) NOT NULL,
    user_id character varying(255) NOT NULL,
    user_name character varying(255),
    redirect_url character varying(2048) NOT NULL,
    state character varying(64) NOT NULL,
    verifier_enc bytea NOT NULL,
    params text DEFAULT '{}'::text NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    connection_id character varying(40),
    created_at timestamp with time zone
);
CREATE TABLE connections (
    id character varying(40) NOT NULL,
    account_id character varying(40) NOT NULL,
    app character varying(40) NOT NULL,
    user_id character varying(255) NOT NULL,
    user_name character varying(255),
    status character varying(20) NOT NULL,
    external_id character varying(255),
    credentials_enc bytea,
    metadata text DEFAULT '{}'::text NOT NULL,
    poll_interval bigint DEFAULT 0 NOT NULL,
    next_sync_at timestamp with time zone NOT NULL,
    lease_token character varying(40) DEFAULT ''::character varying NOT NULL,
    last_sync_at timestamp with time zone,
    last_error character varying(1000),
    cursors text DEFAULT '{}'::text NOT NULL,
    initial_sync_done boolean DEFAULT false NOT NULL,
    emit_backfill boolean DEFAULT false NOT NULL,
    include_raw boolean DEFAULT false NOT NULL,
    generation bigint DEFAULT 0 NOT NULL,
    created_at timestamp with time zone,
    updated_at timestamp with time zone
);
CREATE TABLE deliveries (
    id character varying(40) NOT NULL,
    account_id character varying(40) NOT NULL,
    event_id character varying(40) NOT NULL,
    subscription_id character varying(40) NOT NULL,
    status character varying(16) NOT NULL,
    next_attempt_at timestamp with time zone NOT NULL,
    lease_token character varying(40) DEFAULT ''::character varying NOT NULL,
    attempts bigint DEFAULT 0 NOT NULL,
    retries bigint DEFAULT 0 NOT NULL,
    last_status_code bigint DEFAULT 0 NOT NULL,
    last_error character varying(1000),
    last_attempt_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone
);
CREATE TABLE event_counters (
    account_id character varying(40) NOT NULL,
    seq bigint NOT NULL
);
CREATE TABLE events (
    id character varying(40) NOT NULL,
    account_id character varying(40) NOT NULL,
    seq bigint NOT NULL,
    topic character varying(64) NOT NULL,
    update_type character varying(16) NOT NULL,
    connection_id character varying(40),
    body bytea NOT NULL,
    created_at timestamp with time zone NOT NULL
);
CREATE TABLE inbox_items (
    id character varying(40) NOT NULL,
    app character varying(40) NOT NULL,
    dedup_key character varying(255) NOT NULL,
    method character varying(10) NOT NULL,
    url character varying(2048) NOT NULL,
    header text NOT NULL,
    body bytea NOT NULL,
    received_at timestamp with time zone NOT NULL,
    processed_at timestamp with time zone,
    next_attempt_at timestamp with time zone NOT NULL,
    lease_token character varying(40) DEFAULT ''::character varying NOT NULL,
    attempts bigint DEFAULT 0 NOT NULL,
    last_error character varying(1000)
);
CREATE TABLE sandbox_records (
    connection_id character varying(40) NOT NULL,
    object character varying(40) NOT NULL,
    remote_id character varying(40) NOT NULL,
    data text NOT NULL,
    deleted boolean DEFAULT false NOT NULL,
    version bigint NOT NULL,
    modified_at timestamp with time zone NOT NULL,
    created_at timestamp with time zone NOT NULL
);
CREATE TABLE signing_keys (
    id character varying(40) NOT NULL,
    account_id character varying(40) NOT NULL,
    private_key_enc bytea NOT NULL,
    public_key_pem text NOT NULL,
    created_at timestamp with time zone,
    retired_at timestamp with time zone
);
CREATE TABLE snapshots (
    connection_id character varying(64) NOT NULL,
    object character varying(64) NOT NULL,
    remote_id character varying(255) NOT NULL,
    content_hash character varying(64) NOT NULL,
    payload bytea,
    remote_updated_at timestamp with time zone NOT NULL,
    deleted boolean DEFAULT false NOT NULL,
    scan_generation bigint DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone
);
CREATE TABLE subscriptions (
    id character varying(40) NOT NULL,
    account_id character varying(40) NOT NULL,
    address character varying(2048) NOT NULL,
    topics text NOT NULL,
    active boolean NOT NULL,
    disabled_reason character varying(500),
    disabled_at timestamp with time zone,
    scheme character varying(16) NOT NULL,
    secret_enc bytea,
    max_retries bigint NOT NULL,
    backoff_multiplier numeric NOT NULL,
    schedule text DEFAULT ''::text NOT NULL,
    timeout_seconds bigint NOT NULL,
    rate_limit bigint DEFAULT 0 NOT NULL,
    consecutive_failures bigint DEFAULT 0 NOT NULL,
    failing_since timestamp with time zone,
    circuit_open_until timestamp with time zone,
    created_at timestamp with time zone,
    updated_at timestamp with time zone
);
CREATE TABLE sync_runs (
    id character varying(40) NOT NULL,
    account_id character varying(40) NOT NULL,
    connection_id character varying(40) NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    status character varying(20) NOT NULL,
    initial boolean DEFAULT false NOT NULL,
    created bigint DEFAULT 0 NOT NULL,
    updated bigint DEFAULT 0 NOT NULL,
    deleted bigint DEFAULT 0 NOT NULL,
    scanned bigint DEFAULT 0 NOT NULL,
    error character varying(1000)
);
ALTER TABLE ONLY accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);
ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);
ALTER TABLE ONLY attempts
    ADD CONSTRAINT attempts_pkey PRIMARY KEY (id);
ALTER TABLE ONLY connect_sessions
    ADD CONSTRAINT connect_sessions_pkey PRIMARY KEY (id);
ALTER TABLE ONLY connections
    ADD CONSTRAINT connections_pkey PRIMARY KEY (id);
ALTER TABLE ONLY deliveries
    ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id);
ALTER TABLE ONLY event_counters
    ADD CONSTRAINT event_counters_pkey PRIMARY KEY (account_id);
ALTER TABLE ONLY events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);
ALTER TABLE ONLY inbox_items
    ADD CONSTRAINT inbox_items_pkey PRIMARY KEY (id);
ALTER TABLE ONLY sandbox_records
    ADD CONSTRAINT sandbox_records_pkey PRIMARY KEY (connection_id, object, remote_id);
ALTER TABLE ONLY signing_keys
    ADD CONSTRAINT signing_keys_pkey PRIMARY KEY (id);
ALTER TABLE ONLY snapshots
    ADD CONSTRAINT snapshots_pkey PRIMARY KEY (connection_id, object, remote_id);
ALTER TABLE ONLY subscriptions
    ADD CONSTRAINT subscriptions_pkey PRIMARY KEY (id);
ALTER TABLE ONLY sync_runs
    ADD CONSTRAINT sync_runs_pkey PRIMARY KEY (id);
CREATE INDEX idx_api_keys_account_id ON api_keys USING btree (account_id);
CREATE UNIQUE INDEX idx_api_keys_hash ON api_keys USING btree (hash);
CREATE INDEX idx_attempts_delivery_id ON attempts USING btree (delivery_id);
CREATE INDEX idx_attempts_subscription_id ON attempts USING btree (subscription_id);
CREATE INDEX idx_connect_sessions_account_id ON connect_sessions USING btree (account_id);
CREATE UNIQUE INDEX idx_connect_sessions_state ON connect_sessions USING btree (state);
CREATE INDEX idx_connections_account_user ON connections USING btree (account_id, user_id);
CREATE INDEX idx_connections_app_external ON connections USING btree (app, external_id);
CREATE INDEX idx_connections_next_sync_at ON connections USING btree (next_sync_at);
CREATE INDEX idx_deliveries_account_id ON deliveries USING btree (account_id);
CREATE INDEX idx_deliveries_due ON deliveries USING btree (status, next_attempt_at);
CREATE INDEX idx_deliveries_event_id ON deliveries USING btree (event_id);
CREATE INDEX idx_deliveries_queued ON deliveries USING btree (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX idx_deliveries_sub_status ON deliveries USING btree (subscription_id, status);
CREATE UNIQUE INDEX idx_events_account_seq ON events USING btree (account_id, seq);
CREATE INDEX idx_events_connection_id ON events USING btree (connection_id);
CREATE UNIQUE INDEX idx_inbox_dedup ON inbox_items USING btree (app, dedup_key);
CREATE INDEX idx_inbox_items_next_attempt_at ON inbox_items USING btree (next_attempt_at);
CREATE INDEX idx_inbox_items_processed_at ON inbox_items USING btree (processed_at);
CREATE INDEX idx_sandbox_records_modified_at ON sandbox_records USING btree (modified_at);
CREATE INDEX idx_signing_keys_account_id ON signing_keys USING btree (account_id);
CREATE INDEX idx_subscriptions_account_id ON subscriptions USING btree (account_id);
CREATE INDEX idx_sync_runs_connection_id ON sync_runs USING btree (connection_id);

-- +goose Down
DROP TABLE sync_runs;
DROP TABLE sandbox_records;
DROP TABLE inbox_items;
DROP TABLE connect_sessions;
DROP TABLE connections;
DROP TABLE snapshots;
DROP TABLE signing_keys;
DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE event_counters;
DROP TABLE events;
DROP TABLE subscriptions;
DROP TABLE api_keys;
DROP TABLE accounts;
DROP TABLE IF EXISTS schema_migrations;
