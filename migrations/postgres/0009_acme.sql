-- Carimbo issuing-service schema for PostgreSQL, version 9: ACME (RFC 8555), as the
-- SQLite migration of the same number.
--
-- Accounts are identified by the RFC 7638 thumbprint of their key (unique: one account
-- per key) and belong to the ACME provisioner whose policy limits what they may order.
-- An order owns one authorization per identifier, and each authorization its
-- challenges; state changes are conditional updates (pending -> processing -> valid or
-- invalid), so of two concurrent requests one wins. A finalized order names the serial
-- of its certificate, whose record the issuance path wrote first.
-- Nonces are single use: consuming one deletes its row, and only the request whose
-- delete removed it may go on. Times in unix seconds; identifiers and contacts as JSON.
CREATE TABLE acme_accounts (
    id          TEXT    PRIMARY KEY CHECK (id <> ''),
    thumbprint  TEXT    NOT NULL UNIQUE CHECK (thumbprint <> ''),
    -- The account's public key as a JWK (JSON).
    jwk         TEXT    NOT NULL,
    -- JSON array of contact URLs.
    contact     TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    provisioner TEXT    NOT NULL CHECK (provisioner <> ''),
    profile     TEXT    NOT NULL CHECK (profile <> ''),
    created_at  BIGINT NOT NULL
);

CREATE TABLE acme_orders (
    id                 TEXT    PRIMARY KEY CHECK (id <> ''),
    account_id         TEXT    NOT NULL REFERENCES acme_accounts (id),
    profile            TEXT    NOT NULL,
    status             TEXT    NOT NULL
                               CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
    -- JSON array of {"type": ..., "value": ...}.
    identifiers        TEXT    NOT NULL,
    expires_at         BIGINT NOT NULL,
    -- A problem document (JSON) once the order is invalid.
    error              TEXT,
    certificate_serial TEXT REFERENCES certificates (serial),
    created_at         BIGINT NOT NULL,
    CHECK ((status = 'valid') = (certificate_serial IS NOT NULL))
);
CREATE INDEX acme_orders_account ON acme_orders (account_id, created_at);
CREATE UNIQUE INDEX acme_orders_certificate ON acme_orders (certificate_serial)
    WHERE certificate_serial IS NOT NULL;

CREATE TABLE acme_authorizations (
    id               TEXT    PRIMARY KEY CHECK (id <> ''),
    order_id         TEXT    NOT NULL REFERENCES acme_orders (id),
    account_id       TEXT    NOT NULL REFERENCES acme_accounts (id),
    identifier_type  TEXT    NOT NULL,
    identifier_value TEXT    NOT NULL,
    status           TEXT    NOT NULL
                             CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated',
                                               'expired', 'revoked')),
    expires_at       BIGINT NOT NULL
);
CREATE INDEX acme_authorizations_order ON acme_authorizations (order_id);

CREATE TABLE acme_challenges (
    id               TEXT    PRIMARY KEY CHECK (id <> ''),
    authorization_id TEXT    NOT NULL REFERENCES acme_authorizations (id),
    type             TEXT    NOT NULL,
    token            TEXT    NOT NULL CHECK (token <> ''),
    status           TEXT    NOT NULL
                             CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
    validated_at     BIGINT,
    -- A problem document (JSON) once the challenge is invalid.
    error            TEXT
);
CREATE INDEX acme_challenges_authorization ON acme_challenges (authorization_id);

CREATE TABLE acme_nonces (
    nonce      TEXT    PRIMARY KEY CHECK (nonce <> ''),
    expires_at BIGINT NOT NULL
);
CREATE INDEX acme_nonces_expiry ON acme_nonces (expires_at);
