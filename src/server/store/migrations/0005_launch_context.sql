-- EHR launch: launches wait for the app's authorize request (single use, short-lived, named
-- by the hex of their id's SHA-256 like codes), and the context a grant was given in (the
-- encounter, fhirContext, intent, banner) travels with codes and token pairs as JSON, so a
-- refresh repeats it and every replica on one database sees it.

CREATE TABLE launches (
    id_sha256 TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    client_id TEXT,
    context TEXT NOT NULL,
    expires BIGINT NOT NULL,
    spent BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX launches_by_expires ON launches (expires);

ALTER TABLE auth_codes ADD COLUMN launch_context TEXT;
ALTER TABLE token_pairs ADD COLUMN launch_context TEXT;
