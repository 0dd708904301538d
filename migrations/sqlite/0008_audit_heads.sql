-- Carimbo issuing-service schema for SQLite, version 8: signed audit chain heads.
--
-- Every replica periodically signs the head (last sequence and hash) of its own audit
-- chain with an audit key held by its key provider. The row carries the key's
-- reference and public key; `carimbo audit verify` trusts a key only after checking it
-- against the provider (or against public keys the operator gives). A chain recomputed
-- after an edit, or a cut tail, no longer matches the heads signed before. Hashes,
-- public keys and signatures in lowercase hex; times in unix seconds.
CREATE TABLE audit_heads (
    chain          TEXT    NOT NULL CHECK (chain <> ''),
    sequence       INTEGER NOT NULL CHECK (sequence >= 1),
    hash           TEXT    NOT NULL CHECK (length(hash) = 64),
    signed_at      INTEGER NOT NULL,
    key_reference  TEXT    NOT NULL CHECK (key_reference <> ''),
    algorithm      TEXT    NOT NULL,
    public_key     TEXT    NOT NULL,
    signature      TEXT    NOT NULL,
    PRIMARY KEY (chain, sequence)
) STRICT;

CREATE TRIGGER audit_heads_no_update BEFORE UPDATE ON audit_heads
BEGIN
    SELECT RAISE(ABORT, 'signed audit heads are append-only');
END;
CREATE TRIGGER audit_heads_no_delete BEFORE DELETE ON audit_heads
BEGIN
    SELECT RAISE(ABORT, 'signed audit heads are append-only');
END;
