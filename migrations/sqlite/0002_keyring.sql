-- Carimbo KMS keyring metadata (names, versions, states, provider references; never key
-- material), for the service's keyring. One JSON document per key, replaced with a
-- revision check so a lost update is refused.
CREATE TABLE keyring_settings (
    id                   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    destroy_wait_seconds INTEGER NOT NULL CHECK (destroy_wait_seconds >= 0)
) STRICT;

CREATE TABLE keyring_keys (
    name     TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
    revision INTEGER NOT NULL CHECK (revision >= 1),
    -- The carimbo_kms::KeyRecord as JSON.
    record   TEXT    NOT NULL
) STRICT;

-- Key records are never deleted: destroyed versions stay recorded.
CREATE TRIGGER keyring_keys_no_delete BEFORE DELETE ON keyring_keys
BEGIN
    SELECT RAISE(ABORT, 'keyring records are never deleted');
END;
