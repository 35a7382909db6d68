-- Simulated faults: per client, in the order they answer, with the answers left (-1 = until
-- cleared), so replicas sharing the database agree on what is left. An EHR launch may carry
-- one fault for the client that uses it.

CREATE TABLE simulated_faults (
    client_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    fault TEXT NOT NULL,
    at TEXT,
    times BIGINT NOT NULL,
    remaining BIGINT NOT NULL,
    delay_ms BIGINT,
    created BIGINT NOT NULL,
    PRIMARY KEY (client_id, seq)
);

ALTER TABLE launches ADD COLUMN fault TEXT;
