-- Everything the portal pages keep between requests, so that replicas sharing the database
-- need no sticky sessions: signed-in browser sessions (by the SHA-256 of their cookie id)
-- with their one-time notices, the key anonymous CSRF tokens are made with, authorize
-- requests waiting for the participant (by the SHA-256 of their id, the rest as JSON), and
-- failed sign-in counts per user name and per client address.

CREATE TABLE browser_sessions (
    id_sha256 TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX browser_sessions_by_user ON browser_sessions (username, created);
CREATE INDEX browser_sessions_by_created ON browser_sessions (created);

CREATE TABLE session_notices (
    id_sha256 TEXT PRIMARY KEY,
    notice TEXT NOT NULL
);

CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE pending_authorizations (
    id_sha256 TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    created BIGINT NOT NULL,
    request TEXT NOT NULL
);
CREATE INDEX pending_authorizations_by_client ON pending_authorizations (client_id, created);
CREATE INDEX pending_authorizations_by_created ON pending_authorizations (created);

CREATE TABLE sign_in_failures (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    paused_until BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX sign_in_failures_by_seen ON sign_in_failures (scope, last_seen);
