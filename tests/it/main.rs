//! Carimbo's integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod acme;
mod agent;
mod audit;
mod ceremony;
mod cli_dev;
mod cli_kms;
mod config_examples;
mod dashboard;
mod envelope_spec;
mod faults;
mod fuzz_replay;
mod kms_api;
mod kms_aws_pki;
mod kms_conformance;
mod kms_migration;
mod leases;
mod limits;
mod metrics;
mod ocsp_pki;
mod pkcs11;
mod pkcs11_admin;
mod pki;
mod pki_leaf;
mod replicas;
mod revocation;
mod rollover;
mod secrets;
mod server;
mod store;
