//! `GET /metrics`: the service's Prometheus metrics (OpenMetrics text), documented one
//! by one in `docs/metrics.md` — names, types and labels are a stable interface.
//!
//! Counters and histograms move where the work happens (issuance, OCSP, CRL and KMS
//! handlers, the signing path, the jobs) with atomic operations only; gauges that
//! describe state (CRL age, pools, certificates about to expire) are set when the
//! metrics are read. Label values come from bounded sets only — profiles, configured
//! provisioner and issuer names, error codes, job and provider names — never serials
//! or requested names.

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use carimbo_kms::{SignatureAlgorithm, SigningKey};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use time::OffsetDateTime;

use crate::state::AppState;

/// Buckets of the signing latency (seconds): from an in-process key (tens of
/// microseconds) to a network HSM or AWS KMS (tens to hundreds of milliseconds).
const SIGNING_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Buckets of the age of served OCSP answers (seconds): a minute to a day.
const OCSP_AGE_BUCKETS: [f64; 10] = [
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0,
];

/// Labels of issued certificates.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuedLabels {
    /// `server`, `client`, `workload`.
    pub profile: String,
    /// The configured provisioner.
    pub provisioner: String,
    /// The configured issuer.
    pub issuer: String,
    /// `new` (a bootstrap token or a JWT) or `renewal` (proof of possession).
    pub request: String,
}

/// Labels of refused certificate requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// The requested profile, or `none` when the request was refused before it was read.
    pub profile: String,
    /// The provisioner, or `none` when the caller was not authenticated.
    pub provisioner: String,
    /// The stable error code (docs/api.md).
    pub reason: String,
    /// `new` or `renewal`.
    pub request: String,
}

/// Labels of signatures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SigningLabels {
    /// `pkcs11`, `file`, `aws`.
    pub provider: String,
    /// `issuer` (certificates, CRLs, responder certificates), `ocsp-responder`
    /// (OCSP answers), `kms` (the KMS API's sign operation), `other` (other keys of
    /// the service, such as the audit key that signs chain heads).
    pub key: String,
}

/// One label, `state`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// Which pool: `ca` (the CA token) or `kms` (the KMS token).
    pub token: String,
    /// `size`, `in_use`, `idle`.
    pub state: String,
}

/// One label, `state`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// The state counted.
    pub state: String,
}

/// One label, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// `good`, `revoked`, `unknown`, `malformed`, `unauthorized`, `try_later`, `internal_error`.
    pub status: String,
}

/// One label, `result`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `hit` or `miss`.
    pub result: String,
}

/// One label, `issuer`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuerLabels {
    /// The configured issuer.
    pub issuer: String,
}

/// A CRL: issuer and shard.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CrlLabels {
    /// The configured issuer.
    pub issuer: String,
    /// The shard number, empty for an issuer with one CRL.
    pub shard: String,
}

/// One label, `job`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// `crl`, `ocsp-refresh`, `kms-rotation`, `lease-keeper`, `revocation-log`,
    /// `ocsp-responders`.
    pub job: String,
}

/// A KMS API operation and its outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KmsLabels {
    /// `encrypt`, `decrypt`, `datakey`, `rewrap`, `sign`, `verify`, `hmac`,
    /// `verify-hmac`, `public-key`.
    pub operation: String,
    /// `ok` or the error code.
    pub outcome: String,
}

/// One label, `operation`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// The KMS operation.
    pub operation: String,
}

/// One label, `window`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WindowLabels {
    /// `24h` or `7d`.
    pub window: String,
}

/// One label, `dependency`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    /// `database`, `key-provider:pkcs11`, `key-provider:file`, `kms-provider:pkcs11`.
    pub dependency: String,
}

/// Build information.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: String,
    /// `all` or `ocsp`.
    pub role: String,
}

type SecondsGauge = Gauge<i64, AtomicI64>;

fn signing_histogram() -> Histogram {
    Histogram::new(SIGNING_BUCKETS.iter().copied())
}

/// Every metric of the service, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    issued: Family<IssuedLabels, Counter>,
    refused: Family<RefusedLabels, Counter>,
    signing: Family<SigningLabels, Histogram, fn() -> Histogram>,
    signing_errors: Family<SigningLabels, Counter>,
    hsm_sessions: Family<PoolLabels, SecondsGauge>,
    ocsp_requests: Family<StatusLabels, Counter>,
    ocsp_cache: Family<ResultLabels, Counter>,
    ocsp_response_age: Histogram,
    ocsp_cached_answers: SecondsGauge,
    ocsp_stalest_age: SecondsGauge,
    ocsp_stalest_remaining: SecondsGauge,
    ocsp_responder_not_after: Family<IssuerLabels, SecondsGauge>,
    crl_age: Family<CrlLabels, SecondsGauge>,
    crl_remaining: Family<CrlLabels, SecondsGauge>,
    job_runs: Family<JobLabels, Counter>,
    job_failures: Family<JobLabels, Counter>,
    job_last_success: Family<JobLabels, SecondsGauge>,
    kms_operations: Family<KmsLabels, Counter>,
    kms_denials: Family<OperationLabels, Counter>,
    expiring: Family<WindowLabels, SecondsGauge>,
    issuer_not_after: Family<IssuerLabels, SecondsGauge>,
    db_pool: Family<StateLabels, SecondsGauge>,
    dependency_up: Family<DependencyLabels, SecondsGauge>,
    build_info: Family<BuildLabels, SecondsGauge>,
    store_refreshed: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("carimbo");
        let issued = Family::<IssuedLabels, Counter>::default();
        registry.register(
            "certificates_issued",
            "Certificates issued, by profile, provisioner, issuer and request kind",
            issued.clone(),
        );
        let refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "certificates_refused",
            "Certificate requests refused (new or renewal), by profile, provisioner and error code",
            refused.clone(),
        );
        let signing: Family<SigningLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(signing_histogram);
        registry.register_with_unit(
            "signing_duration",
            "Time to sign with a CA, OCSP responder or KMS key, by key provider",
            Unit::Seconds,
            signing.clone(),
        );
        let signing_errors = Family::<SigningLabels, Counter>::default();
        registry.register(
            "signing_errors",
            "Signatures that failed, by key provider",
            signing_errors.clone(),
        );
        let hsm_sessions = Family::<PoolLabels, SecondsGauge>::default();
        registry.register(
            "hsm_sessions",
            "PKCS#11 session pool: size, sessions in use and idle sessions, per token",
            hsm_sessions.clone(),
        );
        let ocsp_requests = Family::<StatusLabels, Counter>::default();
        registry.register(
            "ocsp_requests",
            "OCSP requests answered, by the status of the answer",
            ocsp_requests.clone(),
        );
        let ocsp_cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "ocsp_cache_lookups",
            "OCSP answers looked up in the in-memory cache: hit or miss",
            ocsp_cache.clone(),
        );
        let ocsp_response_age = Histogram::new(OCSP_AGE_BUCKETS.iter().copied());
        registry.register_with_unit(
            "ocsp_response_age",
            "Age (now minus thisUpdate) of the pre-signed OCSP answers served",
            Unit::Seconds,
            ocsp_response_age.clone(),
        );
        let ocsp_cached_answers = SecondsGauge::default();
        registry.register(
            "ocsp_cached_answers",
            "OCSP answers held in this replica's memory",
            ocsp_cached_answers.clone(),
        );
        let ocsp_stalest_age = SecondsGauge::default();
        registry.register_with_unit(
            "ocsp_stalest_response_age",
            "Age of the stored OCSP answer (of an unexpired certificate) closest to or furthest past its refresh point",
            Unit::Seconds,
            ocsp_stalest_age.clone(),
        );
        let ocsp_stalest_remaining = SecondsGauge::default();
        registry.register_with_unit(
            "ocsp_stalest_response_remaining",
            "Seconds until that stalest stored OCSP answer's nextUpdate (negative: expired)",
            Unit::Seconds,
            ocsp_stalest_remaining.clone(),
        );
        let ocsp_responder_not_after = Family::<IssuerLabels, SecondsGauge>::default();
        registry.register_with_unit(
            "ocsp_responder_not_after_timestamp",
            "End of validity (Unix time) of each issuer's current OCSP responder certificate",
            Unit::Seconds,
            ocsp_responder_not_after.clone(),
        );
        let crl_age = Family::<CrlLabels, SecondsGauge>::default();
        registry.register_with_unit(
            "crl_age",
            "Seconds since thisUpdate of the latest published CRL, per issuer and shard",
            Unit::Seconds,
            crl_age.clone(),
        );
        let crl_remaining = Family::<CrlLabels, SecondsGauge>::default();
        registry.register_with_unit(
            "crl_remaining",
            "Seconds until nextUpdate of the latest published CRL (negative: expired)",
            Unit::Seconds,
            crl_remaining.clone(),
        );
        let job_runs = Family::<JobLabels, Counter>::default();
        registry.register(
            "job_runs",
            "Runs of the scheduled jobs on this replica",
            job_runs.clone(),
        );
        let job_failures = Family::<JobLabels, Counter>::default();
        registry.register(
            "job_failures",
            "Runs of the scheduled jobs that failed",
            job_failures.clone(),
        );
        let job_last_success = Family::<JobLabels, SecondsGauge>::default();
        registry.register_with_unit(
            "job_last_success_timestamp",
            "Unix time of each job's last successful run on this replica",
            Unit::Seconds,
            job_last_success.clone(),
        );
        let kms_operations = Family::<KmsLabels, Counter>::default();
        registry.register(
            "kms_operations",
            "KMS API operations (batch items count one each), by operation and outcome",
            kms_operations.clone(),
        );
        let kms_denials = Family::<OperationLabels, Counter>::default();
        registry.register(
            "kms_policy_denials",
            "KMS API operations denied by the policy (or aimed at a CA key)",
            kms_denials.clone(),
        );
        let expiring = Family::<WindowLabels, SecondsGauge>::default();
        registry.register(
            "certificates_expiring",
            "Issued, unrevoked certificates whose notAfter falls within the window",
            expiring.clone(),
        );
        let issuer_not_after = Family::<IssuerLabels, SecondsGauge>::default();
        registry.register_with_unit(
            "issuer_not_after_timestamp",
            "End of validity (Unix time) of each issuing CA certificate",
            Unit::Seconds,
            issuer_not_after.clone(),
        );
        let db_pool = Family::<StateLabels, SecondsGauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connection pool: open, idle and max connections",
            db_pool.clone(),
        );
        let dependency_up = Family::<DependencyLabels, SecondsGauge>::default();
        registry.register(
            "dependency_up",
            "Whether a dependency answered its last check (1) or not (0)",
            dependency_up.clone(),
        );
        let build_info = Family::<BuildLabels, SecondsGauge>::default();
        registry.register(
            "build_info",
            "Version and role of this process (always 1)",
            build_info.clone(),
        );
        Self {
            registry,
            issued,
            refused,
            signing,
            signing_errors,
            hsm_sessions,
            ocsp_requests,
            ocsp_cache,
            ocsp_response_age,
            ocsp_cached_answers,
            ocsp_stalest_age,
            ocsp_stalest_remaining,
            ocsp_responder_not_after,
            crl_age,
            crl_remaining,
            job_runs,
            job_failures,
            job_last_success,
            kms_operations,
            kms_denials,
            expiring,
            issuer_not_after,
            db_pool,
            dependency_up,
            build_info,
            store_refreshed: Mutex::new(None),
        }
    }

    /// A certificate was issued.
    pub fn issued(&self, profile: &str, provisioner: &str, issuer: &str, renewal: bool) {
        self.issued
            .get_or_create(&IssuedLabels {
                profile: profile.to_owned(),
                provisioner: provisioner.to_owned(),
                issuer: issuer.to_owned(),
                request: request_kind(renewal).to_owned(),
            })
            .inc();
    }

    /// A certificate request was refused with error code `reason`.
    pub fn refused(
        &self,
        profile: Option<&str>,
        provisioner: Option<&str>,
        reason: &str,
        renewal: bool,
    ) {
        self.refused
            .get_or_create(&RefusedLabels {
                profile: profile.unwrap_or("none").to_owned(),
                provisioner: provisioner
                    .filter(|p| !p.is_empty())
                    .unwrap_or("none")
                    .to_owned(),
                reason: reason.to_owned(),
                request: request_kind(renewal).to_owned(),
            })
            .inc();
    }

    /// A signature took `seconds` (or failed).
    pub fn signed(&self, provider: &str, key: &str, seconds: f64, ok: bool) {
        let labels = SigningLabels {
            provider: provider.to_owned(),
            key: key.to_owned(),
        };
        // The error counter exists (at 0) as soon as the key signs, so that rates
        // and alerts see it before the first error.
        let errors = self.signing_errors.get_or_create(&labels);
        if ok {
            self.signing.get_or_create(&labels).observe(seconds);
        } else {
            errors.inc();
        }
    }

    /// An OCSP request got an answer of `status`.
    pub fn ocsp_answered(&self, status: &str) {
        self.ocsp_requests
            .get_or_create(&StatusLabels {
                status: status.to_owned(),
            })
            .inc();
    }

    /// An OCSP cache lookup hit or missed.
    pub fn ocsp_cache(&self, hit: bool) {
        self.ocsp_cache
            .get_or_create(&ResultLabels {
                result: if hit { "hit" } else { "miss" }.to_owned(),
            })
            .inc();
    }

    /// A pre-signed OCSP answer with this thisUpdate was served.
    pub fn ocsp_served(&self, this_update: OffsetDateTime, now: OffsetDateTime) {
        self.ocsp_response_age
            .observe((now - this_update).as_seconds_f64().max(0.0));
    }

    /// A run of `job` ended, well or not.
    pub fn job_ran(&self, job: &str, ok: bool) {
        let labels = JobLabels {
            job: job.to_owned(),
        };
        self.job_runs.get_or_create(&labels).inc();
        // Exists (at 0) from the first run, for rates and alerts.
        let failures = self.job_failures.get_or_create(&labels);
        if ok {
            self.job_last_success
                .get_or_create(&labels)
                .set(OffsetDateTime::now_utc().unix_timestamp());
        } else {
            failures.inc();
        }
    }

    /// A KMS API item ended with `outcome` (`ok` or an error code); `denied` when the
    /// policy refused it.
    pub fn kms_operation(&self, operation: &str, outcome: &str, denied: bool) {
        self.kms_operations
            .get_or_create(&KmsLabels {
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        if denied {
            self.kms_denials
                .get_or_create(&OperationLabels {
                    operation: operation.to_owned(),
                })
                .inc();
        }
    }

    /// Records whether `dependency` answered its check.
    pub fn dependency(&self, dependency: &str, up: bool) {
        self.dependency_up
            .get_or_create(&DependencyLabels {
                dependency: dependency.to_owned(),
            })
            .set(i64::from(up));
    }

    /// Sets the gauges, then encodes every metric (OpenMetrics text).
    pub async fn render(&self, state: &AppState, store_refresh: std::time::Duration) -> String {
        let now = OffsetDateTime::now_utc();
        self.set_state_gauges(state, now);
        let due = match self.store_refreshed.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|at| at.elapsed() >= store_refresh);
                if due {
                    *last = Some(Instant::now());
                }
                due
            }
            Err(_) => true,
        };
        if due {
            self.refresh_from_store(state, now).await;
            // The dependency checks (database, key providers) set `dependency_up`.
            let _ = crate::health::check(state, now).await;
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            tracing::error!("encoding the metrics failed");
        }
        text
    }

    /// Gauges read from memory: CRLs, issuers, responders, pools, the OCSP cache.
    fn set_state_gauges(&self, state: &AppState, now: OffsetDateTime) {
        let role = match state.role {
            crate::Role::All => "all",
            crate::Role::Ocsp => "ocsp",
        };
        let build = BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            role: role.to_owned(),
        };
        if self.build_info.get(&build).is_none() {
            self.build_info.clear();
            self.build_info.get_or_create(&build).set(1);
        }
        for issuer in &state.issuers {
            self.issuer_not_after
                .get_or_create(&IssuerLabels {
                    issuer: issuer.name.clone(),
                })
                .set(issuer.info.not_after().unix_timestamp());
            for shard in issuer.crl_shards() {
                let scope = carimbo_store::crl_scope(&issuer.name, shard);
                let Some(crl) = state.crls.latest(&scope) else {
                    continue;
                };
                let labels = CrlLabels {
                    issuer: issuer.name.clone(),
                    shard: shard.map(|s| s.to_string()).unwrap_or_default(),
                };
                self.crl_age
                    .get_or_create(&labels)
                    .set((now - crl.this_update).whole_seconds());
                self.crl_remaining
                    .get_or_create(&labels)
                    .set((crl.next_update - now).whole_seconds());
            }
        }
        for (issuer, not_after) in state.ocsp.responder_expiry() {
            if let Some(not_after) = not_after {
                self.ocsp_responder_not_after
                    .get_or_create(&IssuerLabels { issuer })
                    .set(not_after.unix_timestamp());
            }
        }
        self.ocsp_cached_answers
            .set(i64::try_from(state.ocsp.cache_len()).unwrap_or(i64::MAX));
        let pool = state.store.pool_status();
        for (name, value) in [("open", pool.open), ("idle", pool.idle), ("max", pool.max)] {
            self.db_pool
                .get_or_create(&StateLabels {
                    state: name.to_owned(),
                })
                .set(i64::from(value));
        }
        let pools = [
            ("ca", state.keys.session_pool()),
            (
                "kms",
                state
                    .kms
                    .as_ref()
                    .and_then(crate::kms_api::KmsService::session_pool),
            ),
        ];
        for (token, pool) in pools {
            let Some(pool) = pool else { continue };
            for (name, value) in [
                ("size", pool.size),
                ("in_use", pool.in_use),
                ("idle", pool.idle),
            ] {
                self.hsm_sessions
                    .get_or_create(&PoolLabels {
                        token: token.to_owned(),
                        state: name.to_owned(),
                    })
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
    }

    /// Gauges read from the database, each query bounded by a timeout: certificates
    /// about to expire, the stalest stored OCSP answer.
    async fn refresh_from_store(&self, state: &AppState, now: OffsetDateTime) {
        let limit = std::time::Duration::from_secs(2);
        for (window, span) in [
            ("24h", time::Duration::hours(24)),
            ("7d", time::Duration::days(7)),
        ] {
            match tokio::time::timeout(limit, state.store.count_expiring(now, now + span)).await {
                Ok(Ok(count)) => {
                    self.expiring
                        .get_or_create(&WindowLabels {
                            window: window.to_owned(),
                        })
                        .set(i64::try_from(count).unwrap_or(i64::MAX));
                }
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "counting certificates about to expire failed");
                    return;
                }
                Err(_) => {
                    tracing::warn!("counting certificates about to expire timed out");
                    return;
                }
            }
        }
        match tokio::time::timeout(limit, state.store.stalest_ocsp_response(now)).await {
            Ok(Ok(Some(stalest))) => {
                self.ocsp_stalest_age
                    .set((now - stalest.this_update).whole_seconds());
                self.ocsp_stalest_remaining
                    .set((stalest.next_update - now).whole_seconds());
            }
            Ok(Ok(None)) => {
                self.ocsp_stalest_age.set(0);
                self.ocsp_stalest_remaining.set(0);
            }
            Ok(Err(error)) => tracing::warn!(error = %error, "reading OCSP freshness failed"),
            Err(_) => tracing::warn!("reading OCSP freshness timed out"),
        }
    }
}

/// The classic Prometheus text format (version 0.0.4) of an OpenMetrics exposition:
/// a counter's `# HELP` and `# TYPE` name its `_total` samples, and the OpenMetrics-only
/// `# UNIT` and `# EOF` lines go. For scrapers that do not ask for OpenMetrics.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match rewritten {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn request_kind(renewal: bool) -> &'static str {
    if renewal { "renewal" } else { "new" }
}

/// A signing key whose signatures are timed into `carimbo_signing_duration_seconds`.
#[derive(Debug)]
pub struct MeteredKey {
    inner: Arc<dyn SigningKey>,
    provider: String,
    key: &'static str,
    metrics: Arc<Metrics>,
}

impl MeteredKey {
    /// Wraps `inner` (a key of `provider`, used as `key`: `issuer`, `ocsp-responder`).
    pub fn wrap(
        inner: Arc<dyn SigningKey>,
        provider: &str,
        key: &'static str,
        metrics: Arc<Metrics>,
    ) -> Arc<dyn SigningKey> {
        Arc::new(Self {
            inner,
            provider: provider.to_owned(),
            key,
            metrics,
        })
    }
}

#[async_trait]
impl SigningKey for MeteredKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.inner.algorithm()
    }

    fn public_key_der(&self) -> &[u8] {
        self.inner.public_key_der()
    }

    async fn sign(&self, message: &[u8]) -> carimbo_kms::Result<Vec<u8>> {
        let started = Instant::now();
        let result = self.inner.sign(message).await;
        self.metrics.signed(
            &self.provider,
            self.key,
            started.elapsed().as_secs_f64(),
            result.is_ok(),
        );
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn counters_and_histograms_encode_in_both_formats() {
        let metrics = Metrics::new();
        metrics.issued("server", "web", "int-server", false);
        metrics.refused(None, None, "unauthorized", true);
        metrics.signed("pkcs11", "issuer", 0.002, true);
        metrics.signed("pkcs11", "issuer", 0.0, false);
        metrics.ocsp_answered("good");
        metrics.job_ran("crl", true);
        let mut openmetrics = String::new();
        prometheus_client::encoding::text::encode(&mut openmetrics, &metrics.registry).unwrap();
        assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
        assert!(openmetrics.contains("# TYPE carimbo_certificates_issued counter\n"));
        assert!(openmetrics.contains(
            "carimbo_certificates_issued_total{profile=\"server\",provisioner=\"web\",issuer=\"int-server\",request=\"new\"} 1\n"
        ));
        assert!(openmetrics.contains(
            "carimbo_certificates_refused_total{profile=\"none\",provisioner=\"none\",reason=\"unauthorized\",request=\"renewal\"} 1\n"
        ));
        assert!(
            openmetrics
                .contains("carimbo_signing_errors_total{provider=\"pkcs11\",key=\"issuer\"} 1\n")
        );
        // Created at 0 with the first run, before any failure.
        assert!(openmetrics.contains("carimbo_job_failures_total{job=\"crl\"} 0\n"));

        let classic = to_prometheus_text(&openmetrics);
        assert!(!classic.contains("# EOF") && !classic.contains("# UNIT"));
        assert!(classic.contains("# TYPE carimbo_certificates_issued_total counter\n"));
        assert!(classic.contains("# HELP carimbo_ocsp_requests_total "));
        assert!(classic.contains("# TYPE carimbo_signing_duration_seconds histogram\n"));
        assert!(classic.contains(
            "carimbo_signing_duration_seconds_count{provider=\"pkcs11\",key=\"issuer\"} 1\n"
        ));
        // Samples are unchanged.
        let samples = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(samples(&openmetrics), samples(&classic));
    }
}
