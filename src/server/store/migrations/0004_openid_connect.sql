-- OpenID Connect: what an id_token repeats (the authorize request's nonce and the sign-in
-- time) travels with codes and token pairs, and the keys id_tokens are signed with are
-- shared by every server on the database, so a restart and every replica sign with the
-- same key and publish the same JWKS. The newest generation signs; a replaced key stays
-- published until what it signed has expired, then the sweep removes it.

ALTER TABLE auth_codes ADD COLUMN nonce TEXT;
ALTER TABLE auth_codes ADD COLUMN auth_time BIGINT;
ALTER TABLE token_pairs ADD COLUMN auth_time BIGINT;

CREATE TABLE signing_keys (
    generation BIGINT PRIMARY KEY,
    kid TEXT NOT NULL UNIQUE,
    private_pem TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created BIGINT NOT NULL,
    retired BIGINT
);
