-- Carimbo issuing-service schema for SQLite, version 3: revocation, CRLs and OCSP.
--
-- Append-only once released, with the conventions of 0001: timestamps are unix seconds
-- (INTEGER, UTC), DER is BLOB, hashes and serials are lowercase hex, tables are STRICT.
-- A revocation changes its `certificates` row, deletes the serial's stored OCSP answer,
-- appends to `revocation_log` and bumps the issuer's `crl_heads.revision`, all in one
-- transaction.

-- One row per revocation or reason change, in commit order (AUTOINCREMENT: an id is
-- never reused). Replicas poll it by id to drop cached OCSP answers.
CREATE TABLE revocation_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    serial      TEXT    NOT NULL REFERENCES certificates (serial),
    issuer      TEXT    NOT NULL,
    -- RFC 5280 CRLReason (0-10; 7 is unused, 8 removeFromCRL is for delta CRLs).
    reason      INTEGER NOT NULL CHECK (reason BETWEEN 0 AND 10 AND reason NOT IN (7, 8)),
    revoked_at  INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL
) STRICT;

CREATE TRIGGER revocation_log_no_update BEFORE UPDATE ON revocation_log
BEGIN
    SELECT RAISE(ABORT, 'the revocation log is append-only');
END;
CREATE TRIGGER revocation_log_no_delete BEFORE DELETE ON revocation_log
BEGIN
    SELECT RAISE(ABORT, 'the revocation log is append-only');
END;

-- Subject keys revoked for keyCompromise: no certificate is issued for them again.
CREATE TABLE blocked_keys (
    subject_key_sha256 TEXT    NOT NULL PRIMARY KEY
                               CHECK (length(subject_key_sha256) = 64
                                      AND subject_key_sha256 NOT GLOB '*[^0-9a-f]*'),
    -- The certificate whose revocation blocked the key.
    serial             TEXT    NOT NULL REFERENCES certificates (serial),
    blocked_at         INTEGER NOT NULL
) STRICT;

-- Finding an issuer's certificates by subject key (keyCompromise: revoke them all).
CREATE INDEX certificates_subject_key ON certificates (subject_key_sha256);

-- Per issuer: the last published CRL and the revision of its revoked set. `revision`
-- is the last revocation_log id that touched the issuer, `published_revision` the
-- revision the last published CRL was built from; the head is dirty while they differ.
-- Before the first CRL, last_number is 0 and both update times are 0 (the epoch).
CREATE TABLE crl_heads (
    issuer             TEXT    NOT NULL PRIMARY KEY CHECK (issuer <> ''),
    last_number        INTEGER NOT NULL CHECK (last_number >= 0),
    last_this_update   INTEGER NOT NULL,
    last_next_update   INTEGER NOT NULL,
    revision           INTEGER NOT NULL CHECK (revision >= 0),
    published_revision INTEGER NOT NULL CHECK (published_revision BETWEEN 0 AND revision),
    CHECK (last_number > 0 OR (last_this_update = 0 AND last_next_update = 0))
) STRICT;

-- Every CRL ever published, by issuer and CRL number (strictly increasing per issuer).
CREATE TABLE crls (
    issuer       TEXT    NOT NULL CHECK (issuer <> ''),
    number       INTEGER NOT NULL CHECK (number >= 1),
    this_update  INTEGER NOT NULL,
    next_update  INTEGER NOT NULL,
    der          BLOB    NOT NULL CHECK (length(der) > 0),
    -- Number of revoked certificates listed.
    entries      INTEGER NOT NULL CHECK (entries >= 0),
    published_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, number),
    CHECK (this_update < next_update)
) STRICT;

-- A published CRL is evidence, like an audit event: never changed or removed.
CREATE TRIGGER crls_no_update BEFORE UPDATE ON crls
BEGIN
    SELECT RAISE(ABORT, 'published CRLs are never changed');
END;
CREATE TRIGGER crls_no_delete BEFORE DELETE ON crls
BEGIN
    SELECT RAISE(ABORT, 'published CRLs are never deleted');
END;

-- The current signed OCSP answer per certificate. Stored only if the certificate's
-- status is still the one it states (checked in the writing transaction); a revocation
-- deletes it in its own transaction.
CREATE TABLE ocsp_responses (
    serial            TEXT    NOT NULL REFERENCES certificates (serial),
    -- The hash of the CertID the answer names (answers echo the client's choice).
    cert_id_hash      TEXT    NOT NULL CHECK (cert_id_hash IN ('sha1', 'sha256', 'sha384', 'sha512')),
    issuer            TEXT    NOT NULL,
    cert_status       TEXT    NOT NULL CHECK (cert_status IN ('good', 'revoked')),
    -- The CRLReason a revoked answer states (NULL when it states none, and for good).
    revocation_reason INTEGER CHECK (revocation_reason BETWEEN 0 AND 10),
    this_update       INTEGER NOT NULL,
    next_update       INTEGER NOT NULL,
    der               BLOB    NOT NULL CHECK (length(der) > 0),
    -- Serial of the certificate that signed it (a delegated responder or the issuer).
    responder         TEXT    NOT NULL CHECK (responder <> '' AND responder NOT GLOB '*[^0-9a-f]*'),
    stored_at         INTEGER NOT NULL,
    PRIMARY KEY (serial, cert_id_hash),
    CHECK (this_update < next_update),
    CHECK (cert_status = 'revoked' OR revocation_reason IS NULL)
) STRICT;

-- Refresh scheduling: an answer is due at the middle of its validity.
CREATE INDEX ocsp_responses_refresh
    ON ocsp_responses (this_update + (next_update - this_update) / 2);

-- Delegated OCSP responders (id-kp-OCSPSigning certificates) and their keys.
CREATE TABLE ocsp_responders (
    serial           TEXT    NOT NULL PRIMARY KEY
                             CHECK (serial <> '' AND serial NOT GLOB '*[^0-9a-f]*'),
    issuer           TEXT    NOT NULL CHECK (issuer <> ''),
    -- Where the signing key lives (a KMS key reference), never key material.
    key_reference    TEXT    NOT NULL CHECK (key_reference <> ''),
    algorithm        TEXT    NOT NULL CHECK (algorithm <> ''),
    certificate      BLOB    NOT NULL CHECK (length(certificate) > 0),
    not_before       INTEGER NOT NULL,
    not_after        INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    key_destroyed_at INTEGER,
    CHECK (not_before < not_after)
) STRICT;

CREATE INDEX ocsp_responders_issuer ON ocsp_responders (issuer, not_after);

-- Responder records stay after their key is destroyed (answers name them).
CREATE TRIGGER ocsp_responders_no_delete BEFORE DELETE ON ocsp_responders
BEGIN
    SELECT RAISE(ABORT, 'OCSP responder records are never deleted');
END;
