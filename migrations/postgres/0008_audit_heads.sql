-- Carimbo issuing-service schema for PostgreSQL, version 8: signed audit chain heads.
--
-- Every replica periodically signs the head (last sequence and hash) of its own audit
-- chain with an audit key held by its key provider. The row carries the key's
-- reference and public key; `carimbo audit verify` trusts a key only after checking it
-- against the provider (or against public keys the operator gives). A chain recomputed
-- after an edit, or a cut tail, no longer matches the heads signed before. Hashes,
-- public keys and signatures in lowercase hex; times in unix seconds.
CREATE TABLE audit_heads (
    chain          TEXT COLLATE "C" NOT NULL CHECK (chain <> ''),
    sequence       BIGINT NOT NULL CHECK (sequence >= 1),
    hash           TEXT   NOT NULL CHECK (length(hash) = 64),
    signed_at      BIGINT NOT NULL,
    key_reference  TEXT   NOT NULL CHECK (key_reference <> ''),
    algorithm      TEXT   NOT NULL,
    public_key     TEXT   NOT NULL,
    signature      TEXT   NOT NULL,
    PRIMARY KEY (chain, sequence)
);

CREATE TRIGGER audit_heads_no_update BEFORE UPDATE ON audit_heads
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('signed audit heads are append-only');
CREATE TRIGGER audit_heads_no_delete BEFORE DELETE ON audit_heads
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('signed audit heads are append-only');
