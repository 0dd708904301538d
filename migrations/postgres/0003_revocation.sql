-- Carimbo issuing-service schema for PostgreSQL, version 3: revocation, CRLs and OCSP
-- (the same tables and invariants as migrations/sqlite/0003_revocation.sql).
--
-- Append-only once released, with the conventions of 0001. A revocation changes its
-- `certificates` row, deletes the serial's stored OCSP answers, appends to
-- `revocation_log` and bumps the issuer's `crl_heads.revision`, all in one transaction.

-- One row per revocation or reason change, in commit order: the store holds one
-- transaction-scoped advisory lock from before it draws an id until it commits, so ids
-- are drawn and committed one revocation at a time (an identity alone hands them out
-- in start order, and a poller could skip an id that commits late). An id is never
-- reused; a rolled-back revocation leaves a gap.
CREATE TABLE revocation_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    serial      TEXT COLLATE "C" NOT NULL REFERENCES certificates (serial),
    issuer      TEXT COLLATE "C" NOT NULL,
    -- RFC 5280 CRLReason (0-10; 7 is unused, 8 removeFromCRL is for delta CRLs).
    reason      SMALLINT NOT NULL CHECK (reason BETWEEN 0 AND 10 AND reason NOT IN (7, 8)),
    revoked_at  BIGINT   NOT NULL,
    recorded_at BIGINT   NOT NULL
);

CREATE TRIGGER revocation_log_no_update BEFORE UPDATE ON revocation_log
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('the revocation log is append-only');
CREATE TRIGGER revocation_log_no_delete BEFORE DELETE ON revocation_log
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('the revocation log is append-only');
CREATE TRIGGER revocation_log_no_truncate BEFORE TRUNCATE ON revocation_log
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('the revocation log is append-only');

-- Subject keys revoked for keyCompromise: no certificate is issued for them again.
CREATE TABLE blocked_keys (
    subject_key_sha256 TEXT COLLATE "C" NOT NULL PRIMARY KEY
                       CHECK (length(subject_key_sha256) = 64
                              AND subject_key_sha256 ~ '^[0-9a-f]+$'),
    -- The certificate whose revocation blocked the key.
    serial             TEXT COLLATE "C" NOT NULL REFERENCES certificates (serial),
    blocked_at         BIGINT NOT NULL
);

-- Finding an issuer's certificates by subject key (keyCompromise: revoke them all).
CREATE INDEX certificates_subject_key ON certificates (subject_key_sha256);

-- Per issuer: the last published CRL and the revision of its revoked set. `revision`
-- is the last revocation_log id that touched the issuer, `published_revision` the
-- revision the last published CRL was built from; the head is dirty while they differ.
-- Before the first CRL, last_number is 0 and both update times are 0 (the epoch).
-- Publishing locks the issuer's row (SELECT ... FOR UPDATE) for its compare-and-swap.
CREATE TABLE crl_heads (
    issuer             TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (issuer <> ''),
    last_number        BIGINT NOT NULL CHECK (last_number >= 0),
    last_this_update   BIGINT NOT NULL,
    last_next_update   BIGINT NOT NULL,
    revision           BIGINT NOT NULL CHECK (revision >= 0),
    published_revision BIGINT NOT NULL CHECK (published_revision BETWEEN 0 AND revision),
    CHECK (last_number > 0 OR (last_this_update = 0 AND last_next_update = 0))
);

-- Every CRL ever published, by issuer and CRL number (strictly increasing per issuer).
CREATE TABLE crls (
    issuer       TEXT COLLATE "C" NOT NULL CHECK (issuer <> ''),
    number       BIGINT NOT NULL CHECK (number >= 1),
    this_update  BIGINT NOT NULL,
    next_update  BIGINT NOT NULL,
    der          BYTEA  NOT NULL CHECK (octet_length(der) > 0),
    -- Number of revoked certificates listed.
    entries      BIGINT NOT NULL CHECK (entries >= 0),
    published_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, number),
    CHECK (this_update < next_update)
);

-- A published CRL is evidence, like an audit event: never changed or removed.
CREATE TRIGGER crls_no_update BEFORE UPDATE ON crls
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('published CRLs are never changed');
CREATE TRIGGER crls_no_delete BEFORE DELETE ON crls
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('published CRLs are never deleted');
CREATE TRIGGER crls_no_truncate BEFORE TRUNCATE ON crls
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('published CRLs are never deleted');

-- The current signed OCSP answer per certificate and CertID hash. Stored only if the
-- certificate's status is still the one it states (checked under a share lock on the
-- certificate row in the writing transaction); a revocation deletes it in its own.
CREATE TABLE ocsp_responses (
    serial            TEXT COLLATE "C" NOT NULL REFERENCES certificates (serial),
    -- The hash of the CertID the answer names (answers echo the client's choice).
    cert_id_hash      TEXT     NOT NULL CHECK (cert_id_hash IN ('sha1', 'sha256', 'sha384', 'sha512')),
    issuer            TEXT COLLATE "C" NOT NULL,
    cert_status       TEXT     NOT NULL CHECK (cert_status IN ('good', 'revoked')),
    -- The CRLReason a revoked answer states (NULL when it states none, and for good).
    revocation_reason SMALLINT CHECK (revocation_reason BETWEEN 0 AND 10),
    this_update       BIGINT   NOT NULL,
    next_update       BIGINT   NOT NULL,
    der               BYTEA    NOT NULL CHECK (octet_length(der) > 0),
    -- Serial of the certificate that signed it (a delegated responder or the issuer).
    responder         TEXT     NOT NULL CHECK (responder ~ '^[0-9a-f]+$'),
    stored_at         BIGINT   NOT NULL,
    PRIMARY KEY (serial, cert_id_hash),
    CHECK (this_update < next_update),
    CHECK (cert_status = 'revoked' OR revocation_reason IS NULL)
);

-- Refresh scheduling: an answer is due at the middle of its validity.
CREATE INDEX ocsp_responses_refresh
    ON ocsp_responses ((this_update + (next_update - this_update) / 2));

-- Delegated OCSP responders (id-kp-OCSPSigning certificates) and their keys.
CREATE TABLE ocsp_responders (
    serial           TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (serial ~ '^[0-9a-f]+$'),
    issuer           TEXT COLLATE "C" NOT NULL CHECK (issuer <> ''),
    -- Where the signing key lives (a KMS key reference), never key material.
    key_reference    TEXT   NOT NULL CHECK (key_reference <> ''),
    algorithm        TEXT   NOT NULL CHECK (algorithm <> ''),
    certificate      BYTEA  NOT NULL CHECK (octet_length(certificate) > 0),
    not_before       BIGINT NOT NULL,
    not_after        BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    key_destroyed_at BIGINT,
    CHECK (not_before < not_after)
);

CREATE INDEX ocsp_responders_issuer ON ocsp_responders (issuer, not_after);

-- Responder records stay after their key is destroyed (answers name them).
CREATE TRIGGER ocsp_responders_no_delete BEFORE DELETE ON ocsp_responders
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('OCSP responder records are never deleted');
CREATE TRIGGER ocsp_responders_no_truncate BEFORE TRUNCATE ON ocsp_responders
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('OCSP responder records are never deleted');
