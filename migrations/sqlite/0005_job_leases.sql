-- Carimbo issuing-service schema for SQLite, version 5: job leases.
--
-- A scheduled job (CRL publication, OCSP refresh) runs on the replica holding its
-- lease. `fence` grows by one each time the lease passes to another holder; the job's
-- writes carry the fence they were started under and are refused, inside their own
-- transaction, when it is no longer the current one. Times in unix milliseconds.
CREATE TABLE job_leases (
    job         TEXT PRIMARY KEY NOT NULL CHECK (length(job) > 0),
    holder      TEXT NOT NULL CHECK (length(holder) > 0),
    fence       INTEGER NOT NULL CHECK (fence > 0),
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
