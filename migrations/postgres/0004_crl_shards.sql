-- Carimbo issuing-service schema for PostgreSQL, version 4: CRL shards (as the SQLite
-- migration of the same number).
--
-- An issuer may split its CRL into shards. A certificate's shard is chosen at issuance
-- and written into its CRL distribution point, so it is stored with the certificate and
-- never recomputed. NULL: the issuer's single CRL. The CRL tables keep one head and one
-- number sequence per scope: `{issuer}` for the single CRL, `{issuer}/{shard}` for a
-- shard (in their `issuer` column).
ALTER TABLE certificates ADD COLUMN crl_shard SMALLINT CHECK (crl_shard BETWEEN 0 AND 255);
