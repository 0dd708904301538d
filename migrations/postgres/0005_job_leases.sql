-- Carimbo issuing-service schema for PostgreSQL, version 5: job leases (as the SQLite
-- migration of the same number).
--
-- A scheduled job (CRL publication, OCSP refresh) runs on the replica holding its
-- lease. `fence` grows by one each time the lease passes to another holder; the job's
-- writes carry the fence they were started under and are refused, inside their own
-- transaction (which holds a share lock on the lease row, so a takeover waits for it),
-- when it is no longer the current one. Times in unix milliseconds.
CREATE TABLE job_leases (
    job         TEXT PRIMARY KEY CHECK (length(job) > 0),
    holder      TEXT NOT NULL CHECK (length(holder) > 0),
    fence       BIGINT NOT NULL CHECK (fence > 0),
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
