-- Carimbo issuing-service schema for PostgreSQL, version 1 (the same tables, columns and
-- invariants as migrations/sqlite/0001_initial.sql).
--
-- Append-only once released: change the schema with a new numbered file, never by
-- editing this one (the store refuses to start when an applied migration's checksum
-- differs). Conventions: timestamps are unix seconds (BIGINT, UTC), as in SQLite, so
-- both backends map to the same records; binary data (DER) is BYTEA; lists and
-- documents are JSON text (TEXT, never jsonb: the audit chain hashes the text byte for
-- byte); hashes and serials are lowercase hex. Names that are compared or sorted use
-- the "C" collation, so order and equality are bytewise whatever the database locale.

-- Refuses a change: the body of every append-only trigger. The message is the
-- trigger's argument.
CREATE FUNCTION carimbo_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END
$$;

-- Who a chain of certificates belongs to: a bootstrap by a provisioner starts a
-- lineage; renewals continue it and re-check that provisioner's current policy.
CREATE TABLE lineages (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (id <> ''),
    provisioner TEXT   NOT NULL,
    identity    TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

-- One row per serial, written as an intent before the issuer key signs anything
-- (status 'pending'), then completed ('issued', with the DER) or failed. The primary
-- key on the serial is what detects a serial collision.
CREATE TABLE certificates (
    serial             TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (serial ~ '^[0-9a-f]+$'),
    issuer             TEXT COLLATE "C" NOT NULL,
    profile            TEXT     NOT NULL,
    provisioner        TEXT     NOT NULL,
    lineage            TEXT COLLATE "C" NOT NULL REFERENCES lineages (id),
    requester          TEXT     NOT NULL,
    -- JSON array of strings.
    sans               TEXT     NOT NULL,
    subject_key_sha256 TEXT COLLATE "C" NOT NULL,
    not_before         BIGINT   NOT NULL,
    not_after          BIGINT   NOT NULL,
    -- The certificate that was linted (signed by a throwaway key), kept as evidence of
    -- what the issuer key was asked to sign.
    lint_certificate   BYTEA    NOT NULL,
    request_id         TEXT     NOT NULL,
    status             TEXT     NOT NULL
                                CHECK (status IN ('pending', 'issued', 'failed', 'revoked')),
    -- The signed certificate (DER), present exactly when it was issued.
    certificate        BYTEA,
    failure_reason     TEXT,
    created_at         BIGINT   NOT NULL,
    issued_at          BIGINT,
    revoked_at         BIGINT,
    -- RFC 5280 CRLReason (0-10, 7 unused).
    revocation_reason  SMALLINT CHECK (revocation_reason BETWEEN 0 AND 10
                                       AND revocation_reason <> 7),
    CHECK (not_before < not_after),
    CHECK ((status IN ('issued', 'revoked')) = (certificate IS NOT NULL AND issued_at IS NOT NULL)),
    CHECK ((status = 'failed') = (failure_reason IS NOT NULL)),
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL AND revocation_reason IS NOT NULL))
);

-- Start-up reconciliation reads the pending intents.
CREATE INDEX certificates_pending ON certificates (created_at) WHERE status = 'pending';
-- CRL generation: the revoked certificates of an issuer, until after they expire.
CREATE INDEX certificates_issuer_status ON certificates (issuer, status, not_after);
CREATE INDEX certificates_lineage ON certificates (lineage);

-- A certificate record is never deleted (no certificate without its record). Statement
-- triggers fire even when no row matches, and TRUNCATE (which skips row triggers) is
-- refused as well.
CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('certificate records are never deleted');
CREATE TRIGGER certificates_no_truncate BEFORE TRUNCATE ON certificates
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('certificate records are never deleted');

-- One-time bootstrap tokens. Only the SHA-256 of a token is stored; consuming one sets
-- used_at/used_by with a single conditional UPDATE.
CREATE TABLE bootstrap_tokens (
    token_hash      TEXT COLLATE "C" NOT NULL PRIMARY KEY
                    CHECK (length(token_hash) = 64 AND token_hash ~ '^[0-9a-f]+$'),
    provisioner     TEXT   NOT NULL,
    profile         TEXT   NOT NULL,
    -- JSON array of strings: the names the token allows.
    sans            TEXT   NOT NULL,
    max_ttl_seconds BIGINT NOT NULL CHECK (max_ttl_seconds > 0),
    expires_at      BIGINT NOT NULL,
    created_by      TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    used_at         BIGINT,
    used_by         TEXT,
    CHECK ((used_at IS NULL) = (used_by IS NULL))
);

-- Hash-chained audit events, one chain per writer (replica). hash = SHA-256 over the
-- chain, sequence, previous hash, recorded_at and the event text exactly as stored
-- (canonical JSON); see the crate's `audit` module for the byte layout.
CREATE TABLE audit_events (
    chain         TEXT COLLATE "C" NOT NULL CHECK (chain <> ''),
    sequence      BIGINT NOT NULL CHECK (sequence >= 1),
    previous_hash TEXT   NOT NULL CHECK (length(previous_hash) = 64),
    hash          TEXT   NOT NULL CHECK (length(hash) = 64),
    event         TEXT   NOT NULL,
    recorded_at   BIGINT NOT NULL,
    PRIMARY KEY (chain, sequence)
);

-- Append-only: the application never changes or removes an event. (Someone who owns
-- the database can drop these triggers; the hash chain and the signed chain heads are
-- what detect that.)
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('audit events are append-only');
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('audit events are append-only');
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('audit events are append-only');
