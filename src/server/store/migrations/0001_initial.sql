-- Clients, approvals, tokens and codes: the durable state of the SMART server.
-- Portable SQL (SQLite and PostgreSQL): TEXT and BIGINT only, flags as 0/1, lists and
-- metadata as JSON text. No foreign keys: a row whose approval is gone is refused by
-- every reader and removed by the sweep.

CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    secret_sha256 TEXT,
    client_name TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    scope TEXT NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    extra TEXT NOT NULL
);

CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    username TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires BIGINT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX approvals_by_username ON approvals (username);
CREATE INDEX approvals_by_expires ON approvals (expires);

CREATE TABLE tokens (
    access_token TEXT PRIMARY KEY,
    refresh_token TEXT UNIQUE,
    approval_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    access_expires BIGINT NOT NULL,
    from_code TEXT
);
CREATE INDEX tokens_by_approval ON tokens (approval_id);
CREATE INDEX tokens_by_code ON tokens (from_code);
CREATE INDEX tokens_by_access_expires ON tokens (access_expires);

CREATE TABLE codes (
    code TEXT PRIMARY KEY,
    approval_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_uri_given BIGINT NOT NULL,
    scope TEXT NOT NULL,
    code_challenge TEXT,
    expires BIGINT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    replayed BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX codes_by_approval ON codes (approval_id);
CREATE INDEX codes_by_expires ON codes (expires);
