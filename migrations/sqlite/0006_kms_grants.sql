-- Carimbo issuing-service schema for SQLite, version 6: KMS grants.
--
-- Administrators grant an identity the use of some keys for some operations during a
-- window, on top of the rules in the config. Rows are never deleted: a revoked grant
-- keeps its row and gets `revoked_at`. Key patterns and operations are JSON lists.
-- Times in unix seconds; a grant is valid while not_before <= now < not_after.
CREATE TABLE kms_grants (
    id          TEXT PRIMARY KEY NOT NULL CHECK (length(id) > 0),
    identity    TEXT NOT NULL CHECK (length(identity) > 0),
    keys        TEXT NOT NULL,
    operations  TEXT NOT NULL,
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    CHECK (not_after > not_before)
) STRICT;
CREATE INDEX kms_grants_live ON kms_grants (not_after) WHERE revoked_at IS NULL;
