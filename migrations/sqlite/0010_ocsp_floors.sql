-- Carimbo issuing-service schema, version 10: the OCSP thisUpdate floor.
--
-- A revocation deletes the certificate's stored answers (no reader may be served a
-- stored `good` after it) but keeps here the latest thisUpdate they carried: a later
-- answer for that certificate is never dated before it, even when signed by a replica
-- whose clock is behind. Times in unix seconds.
CREATE TABLE ocsp_floors (
    serial      TEXT    NOT NULL PRIMARY KEY REFERENCES certificates (serial),
    this_update INTEGER NOT NULL
) STRICT;
