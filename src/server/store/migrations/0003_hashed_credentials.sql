-- Tokens and codes are kept only as the hex of their SHA-256 (the values exist only in the
-- answer that hands them out), and may be bound to the browser session that approved them
-- (online_access). New tables, because the old ones are keyed by the values themselves:
-- SQL cannot compute SHA-256 portably, so the server copies the rows of `tokens` and
-- `codes` over with their hashes, and drops the old tables, in one transaction right after
-- this migration (see sql/conversions.rs). `conversions` records that step.

CREATE TABLE token_pairs (
    access_sha256 TEXT PRIMARY KEY,
    refresh_sha256 TEXT UNIQUE,
    approval_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    access_expires BIGINT NOT NULL,
    from_code_sha256 TEXT,
    session_sha256 TEXT
);
CREATE INDEX token_pairs_by_approval ON token_pairs (approval_id);
CREATE INDEX token_pairs_by_code ON token_pairs (from_code_sha256);
CREATE INDEX token_pairs_by_access_expires ON token_pairs (access_expires);

CREATE TABLE auth_codes (
    code_sha256 TEXT PRIMARY KEY,
    approval_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    redirect_uri_given BIGINT NOT NULL,
    scope TEXT NOT NULL,
    code_challenge TEXT,
    expires BIGINT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    replayed BIGINT NOT NULL DEFAULT 0,
    session_sha256 TEXT
);
CREATE INDEX auth_codes_by_approval ON auth_codes (approval_id);
CREATE INDEX auth_codes_by_expires ON auth_codes (expires);

CREATE TABLE conversions (
    name TEXT PRIMARY KEY,
    done BIGINT NOT NULL DEFAULT 0
);
INSERT INTO conversions (name, done) VALUES ('hash tokens and codes', 0);

-- A client that never got an approval is swept after --client-idle-lifetime. Clients with
-- an approval now count as used; one whose approvals are all gone already cannot be told
-- apart from one that never had any.
ALTER TABLE clients ADD COLUMN approved BIGINT NOT NULL DEFAULT 0;
UPDATE clients SET approved = 1
    WHERE EXISTS (SELECT 1 FROM approvals WHERE approvals.client_id = clients.client_id);
CREATE INDEX clients_never_approved ON clients (approved, issued_at);
