-- Carimbo issuing-service schema for PostgreSQL, version 7: the KMS inventory of wrapped
-- data keys, and rewrap (migration) jobs.
--
-- A row is a wrapped data key the service knows about (its own data keys made with an
-- inventory id, or an application's imported sidecar): the envelope headers, the KEK
-- version and provider that wrapped it, and the encryption context (associated data,
-- not secret; a JSON object). The rewrap job moves rows to the KEK's primary version
-- one by one, each with a conditional update, so a killed job resumes where it stopped
-- and never rewraps a row twice. A version is not destroyed while rows reference it.
CREATE TABLE kms_inventory (
    id          TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
    key_name    TEXT NOT NULL,
    key_version BIGINT NOT NULL CHECK (key_version > 0),
    provider    TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    context     TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT,
    dead        BIGINT NOT NULL DEFAULT 0 CHECK (dead IN (0, 1)),
    updated_at  BIGINT NOT NULL
);
CREATE INDEX kms_inventory_by_version ON kms_inventory (key_name, key_version, dead);

CREATE TABLE kms_jobs (
    id              TEXT PRIMARY KEY,
    key_name        TEXT NOT NULL,
    target_version  BIGINT NOT NULL,
    target_provider TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    total           BIGINT NOT NULL,
    done            BIGINT NOT NULL,
    dead            BIGINT NOT NULL,
    started_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
