-- private_key_jwt and Backend Services: every client assertion's jti is remembered until the
-- assertion expires, per client, so a replayed assertion is refused on every replica that
-- shares the database.

CREATE TABLE assertion_jtis (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX assertion_jtis_by_expires ON assertion_jtis (expires);
