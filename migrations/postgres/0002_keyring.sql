-- Carimbo KMS keyring metadata (names, versions, states, provider references; never key
-- material), for the service's keyring. One JSON document per key, replaced with a
-- revision check so a lost update is refused. Same as migrations/sqlite/0002_keyring.sql.
CREATE TABLE keyring_settings (
    id                   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    destroy_wait_seconds BIGINT  NOT NULL CHECK (destroy_wait_seconds >= 0)
);

CREATE TABLE keyring_keys (
    name     TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (name <> ''),
    revision BIGINT NOT NULL CHECK (revision >= 1),
    -- The carimbo_kms::KeyRecord as JSON.
    record   TEXT   NOT NULL
);

-- Key records are never deleted: destroyed versions stay recorded.
CREATE TRIGGER keyring_keys_no_delete BEFORE DELETE ON keyring_keys
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('keyring records are never deleted');
CREATE TRIGGER keyring_keys_no_truncate BEFORE TRUNCATE ON keyring_keys
    FOR EACH STATEMENT EXECUTE FUNCTION carimbo_refuse_change('keyring records are never deleted');
