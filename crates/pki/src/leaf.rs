//! End-entity (leaf) certificates for the issuing service: the three profiles, their
//! lifetimes, the issuer-side checks, and building the TBS for lint-before-sign.
//!
//! | | server | client | workload (SPIFFE X509-SVID) |
//! |---|---|---|---|
//! | subject | empty | empty | empty |
//! | subjectAltName | critical; DNS (+ IP) | critical; one `spiffe://` URI (+ DNS) | critical; one `spiffe://` URI |
//! | basicConstraints (critical) | cA FALSE | cA FALSE | cA FALSE |
//! | keyUsage (critical) | digitalSignature | digitalSignature | digitalSignature |
//! | extKeyUsage | serverAuth | clientAuth | serverAuth, clientAuth |
//! | SKID / AKID | computed / = issuer SKID | same | same |
//! | CRL DP, AIA (OCSP, caIssuers) | as given, `http://` | same | same |
//! | lifetime: default / max | 24 h / 72 h | 12 h / 48 h | 12 h / 48 h |
//!
//! Decisions:
//!
//! - **Empty subject for every profile.** The identity is in the SAN, which is then
//!   critical (RFC 5280 §4.1.2.6, §4.2.1.6). Verifiers match names against the SAN
//!   only (RFC 9525, obsoleting RFC 6125, dropped the CN fallback); a CN would be one more
//!   copy of a name to authorise and keep consistent, and nothing from the CSR's
//!   subject is ever copied.
//! - **keyUsage is digitalSignature only, also for RSA server keys.** keyEncipherment
//!   would allow TLS 1.2 RSA key transport, which has no forward secrecy and is gone
//!   from TLS 1.3; with digitalSignature alone an RSA server key still serves
//!   (EC)DHE-RSA and TLS 1.3. RFC 5280 and the CA/B BRs allow either bit for RSA.
//! - **A requested lifetime above the profile's maximum is refused, not capped**
//!   ([`LeafError::TtlTooLong`]): the caller learns the limit rather than silently
//!   getting less and renewing at the wrong time. The end of the issuer's validity
//!   does cap it silently: that limit is the CA's, not the caller's.
//! - **Leaves are issued by intermediates only**: a self-issued issuer (a root) is
//!   refused (root keys stay offline, DESIGN §2), and the issuer's EKU must include
//!   every purpose of the leaf's (a server intermediate cannot issue client or
//!   workload certificates).

use std::fmt;
use std::str::FromStr;

use time::{Duration, OffsetDateTime};
use x509_parser::extensions::ParsedExtension;

use crate::algorithm::key_identifier;
use crate::certificate::{PreparedCertificate, build_lint_certificate, check_ia5};
use crate::constraints::IssuerNameConstraints;
use crate::der::TAG_SEQUENCE;
use crate::issuer::whole_seconds;
use crate::leaf_key::leaf_key;
use crate::lints::{Target, has_errors, lint_target};
use crate::profile::authority_info_access_der;
use crate::throwaway::ThrowawayKey;
use crate::{IssuerInfo, LeafError, PkiError, SerialNumber, SubjectAltName, check_sans};

/// OID arcs of authorityInfoAccess, for an rcgen custom extension.
const ARCS_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];

/// Longest backdate a profile may use.
pub const MAX_BACKDATE: Duration = Duration::hours(1);

/// The kind of leaf certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeafKind {
    /// A TLS server: EKU serverAuth; DNS names and, where allowed, IP addresses.
    Server,
    /// A TLS client: EKU clientAuth; one SPIFFE ID plus optional DNS names.
    Client,
    /// A SPIFFE X509-SVID: EKU serverAuth + clientAuth; exactly one SPIFFE ID.
    Workload,
}

impl LeafKind {
    /// Every kind.
    pub const ALL: [LeafKind; 3] = [Self::Server, Self::Client, Self::Workload];

    /// `server`, `client` or `workload`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
            Self::Workload => "workload",
        }
    }

    /// Whether the EKU asserts serverAuth and clientAuth respectively.
    pub(crate) fn server_and_client(self) -> (bool, bool) {
        match self {
            Self::Server => (true, false),
            Self::Client => (false, true),
            Self::Workload => (true, true),
        }
    }
}

impl fmt::Display for LeafKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LeafKind {
    type Err = LeafError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| LeafError::UnknownProfile(text.to_owned()))
    }
}

/// What a leaf profile allows: lifetimes and the optional name and key types. The
/// extensions themselves are fixed by [`LeafKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeafProfile {
    /// The kind of certificate.
    pub kind: LeafKind,
    /// Lifetime when the caller asks for none.
    pub default_ttl: Duration,
    /// Longest lifetime a caller may ask for; more is refused.
    pub max_ttl: Duration,
    /// How far notBefore is set before the time of issuance (clock skew), at most
    /// [`MAX_BACKDATE`].
    pub backdate: Duration,
    /// Whether Ed25519 subject keys are accepted (default: no — not every TLS peer
    /// supports them).
    pub allow_ed25519: bool,
    /// Whether IP address SANs are accepted (server profile only).
    pub allow_ip_sans: bool,
    /// Whether a wildcard DNS name (`*.example.com`) is accepted (server profile only).
    pub allow_wildcards: bool,
}

impl LeafProfile {
    /// The default profile of `kind`: lifetimes 24 h / 72 h (server) or 12 h / 48 h
    /// (client, workload), backdate 1 minute, no Ed25519, IP SANs for servers only, no
    /// wildcards.
    pub fn defaults(kind: LeafKind) -> Self {
        let (default_ttl, max_ttl) = match kind {
            LeafKind::Server => (Duration::hours(24), Duration::hours(72)),
            LeafKind::Client | LeafKind::Workload => (Duration::hours(12), Duration::hours(48)),
        };
        Self {
            kind,
            default_ttl,
            max_ttl,
            backdate: Duration::minutes(1),
            allow_ed25519: false,
            allow_ip_sans: kind == LeafKind::Server,
            allow_wildcards: false,
        }
    }

    /// Checks the profile's own values: positive lifetimes with the default not above
    /// the maximum, and a backdate between zero and [`MAX_BACKDATE`].
    pub fn check(&self) -> Result<(), PkiError> {
        let invalid = |why: String| {
            Err(PkiError::InvalidTemplate(format!(
                "{} profile: {why}",
                self.kind
            )))
        };
        if !self.max_ttl.is_positive() || !self.default_ttl.is_positive() {
            return invalid("lifetimes must be positive".into());
        }
        if self.default_ttl > self.max_ttl {
            return invalid("the default lifetime is longer than the maximum".into());
        }
        if self.backdate.is_negative() || self.backdate > MAX_BACKDATE {
            return invalid(format!(
                "the backdate must be between 0 and {}",
                crate::error::show_duration(MAX_BACKDATE)
            ));
        }
        Ok(())
    }

    /// The validity of a certificate issued at `now`: notBefore is `now` minus the
    /// backdate; notAfter is `now` plus the requested lifetime (or the default), and
    /// never after `issuer_not_after`. Times are whole seconds.
    ///
    /// A requested lifetime over `max_ttl` is refused ([`LeafError::TtlTooLong`]), not
    /// capped, so the caller learns the limit; zero or negative is refused
    /// ([`LeafError::InvalidTtl`]); an issuer that has expired is refused
    /// ([`LeafError::IssuerNotValid`]). The issuer's end caps silently.
    pub fn validity(
        &self,
        now: OffsetDateTime,
        requested_ttl: Option<Duration>,
        issuer_not_after: OffsetDateTime,
    ) -> Result<(OffsetDateTime, OffsetDateTime), LeafError> {
        let now = whole_seconds(now);
        let issuer_not_after = whole_seconds(issuer_not_after);
        let ttl = match requested_ttl {
            Some(requested) if !requested.is_positive() => {
                return Err(LeafError::InvalidTtl { requested });
            }
            Some(requested) if requested > self.max_ttl => {
                return Err(LeafError::TtlTooLong {
                    requested,
                    max: self.max_ttl,
                });
            }
            Some(requested) => requested,
            None => self.default_ttl.min(self.max_ttl),
        };
        if issuer_not_after <= now {
            return Err(LeafError::IssuerNotValid {
                now,
                reason: format!("it expired at {issuer_not_after}"),
            });
        }
        // Whole seconds: sub-second parts of the lifetime would be truncated anyway.
        let ttl = Duration::seconds(ttl.whole_seconds());
        let not_before = now - self.backdate.max(Duration::ZERO);
        let not_after = (now + ttl).min(issuer_not_after);
        Ok((not_before, not_after))
    }

    /// [`validity`](Self::validity) for `issuer`, with notBefore also kept inside the
    /// issuer's validity (a backdate never reaches before a fresh intermediate).
    pub fn validity_for_issuer(
        &self,
        now: OffsetDateTime,
        requested_ttl: Option<Duration>,
        issuer: &IssuerInfo,
    ) -> Result<(OffsetDateTime, OffsetDateTime), LeafError> {
        if whole_seconds(now) < issuer.not_before() {
            return Err(LeafError::IssuerNotValid {
                now: whole_seconds(now),
                reason: format!("it is valid only from {}", issuer.not_before()),
            });
        }
        let (not_before, not_after) = self.validity(now, requested_ttl, issuer.not_after())?;
        Ok((not_before.max(issuer.not_before()), not_after))
    }

    /// Checks that `issuer` may issue certificates of this profile: it has a
    /// certificate, is not a self-issued root, and its extended key usage (when
    /// present) includes every purpose of this profile's (or anyExtendedKeyUsage).
    pub fn check_issuer(&self, issuer: &IssuerInfo) -> Result<(), LeafError> {
        let name = issuer.subject().to_string();
        let facts = IssuerFacts::of(issuer).map_err(|reason| LeafError::IssuerNotAllowed {
            issuer: name.clone(),
            reason,
        })?;
        if facts.self_issued {
            return Err(LeafError::IssuerNotAllowed {
                issuer: name,
                reason: "it is a self-issued root; root keys stay offline and sign only CA \
                         certificates and ARLs"
                    .into(),
            });
        }
        if let Some(usage) = &facts.usage {
            let missing = usage.missing_for(self.kind);
            if !missing.is_empty() {
                return Err(LeafError::IssuerEkuMismatch {
                    issuer: name,
                    profile: self.kind,
                    issuer_usage: usage.listed.join(", "),
                    missing: missing.join(", "),
                });
            }
        }
        Ok(())
    }
}

/// The issuer's extended key usage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IssuerUsage {
    pub server: bool,
    pub client: bool,
    pub any: bool,
    /// The purposes as names, for messages.
    pub listed: Vec<String>,
}

impl IssuerUsage {
    /// The purposes of `kind` this EKU lacks.
    pub(crate) fn missing_for(&self, kind: LeafKind) -> Vec<&'static str> {
        if self.any {
            return Vec::new();
        }
        let (server, client) = kind.server_and_client();
        let mut missing = Vec::new();
        if server && !self.server {
            missing.push("serverAuth");
        }
        if client && !self.client {
            missing.push("clientAuth");
        }
        missing
    }
}

/// What the leaf checks need to know about the issuer's certificate.
#[derive(Clone, Debug)]
pub(crate) struct IssuerFacts {
    pub self_issued: bool,
    /// `None`: no EKU extension (no constraint).
    pub usage: Option<IssuerUsage>,
}

impl IssuerFacts {
    pub(crate) fn of(issuer: &IssuerInfo) -> Result<Self, String> {
        let der = issuer.certificate_der().ok_or(
            "it has no certificate (a root being built); leaves are issued by intermediates",
        )?;
        let (_, certificate) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("its certificate does not parse: {e}"))?;
        let tbs = &certificate.tbs_certificate;
        let self_issued = tbs.issuer.as_raw() == tbs.subject.as_raw();
        let mut usage = None;
        for extension in tbs.extensions() {
            if let ParsedExtension::ExtendedKeyUsage(eku) = extension.parsed_extension() {
                let mut listed = Vec::new();
                for (set, name) in [
                    (eku.any, "anyExtendedKeyUsage"),
                    (eku.server_auth, "serverAuth"),
                    (eku.client_auth, "clientAuth"),
                    (eku.code_signing, "codeSigning"),
                    (eku.email_protection, "emailProtection"),
                    (eku.time_stamping, "timeStamping"),
                    (eku.ocsp_signing, "OCSPSigning"),
                ] {
                    if set {
                        listed.push(name.to_string());
                    }
                }
                listed.extend(eku.other.iter().map(ToString::to_string));
                usage = Some(IssuerUsage {
                    server: eku.server_auth,
                    client: eku.client_auth,
                    any: eku.any,
                    listed,
                });
            }
        }
        Ok(Self { self_issued, usage })
    }
}

/// Everything that goes into a leaf certificate, decided by the caller (after
/// [`validate_csr`](crate::validate_csr), [`check_sans`] and the caller's own policy);
/// the profile decides the rest, and nothing comes from the CSR but its public key.
#[derive(Clone, Debug)]
pub struct LeafTemplate {
    /// The profile to apply.
    pub profile: LeafProfile,
    /// DER `SubjectPublicKeyInfo` of the subject key (from
    /// [`ValidatedCsr`](crate::ValidatedCsr)).
    pub subject_public_key_info: Vec<u8>,
    /// The names, in order (DNS names are written in lower case).
    pub sans: Vec<SubjectAltName>,
    /// The serial number (use [`SerialNumber::random`]).
    pub serial: SerialNumber,
    /// Start of validity (whole seconds, UTC; see [`LeafProfile::validity`]).
    pub not_before: OffsetDateTime,
    /// End of validity, inclusive (whole seconds, UTC).
    pub not_after: OffsetDateTime,
    /// CRL distribution point URLs (`http://` only), in one distribution point.
    pub crl_distribution_points: Vec<String>,
    /// AIA OCSP responder URLs (`http://` only).
    pub ocsp_responders: Vec<String>,
    /// AIA caIssuers URLs (`http://` only).
    pub ca_issuers: Vec<String>,
}

/// The rcgen parameters for a leaf: everything the profile decides.
pub(crate) fn leaf_params(template: &LeafTemplate) -> Result<rcgen::CertificateParams, PkiError> {
    let mut params = rcgen::CertificateParams::default();
    params.not_before = whole_seconds(template.not_before);
    params.not_after = whole_seconds(template.not_after);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(template.serial.as_bytes()));
    // Empty subject: rcgen then marks the SAN critical (RFC 5280 §4.1.2.6).
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let (server, client) = template.profile.kind.server_and_client();
    params.extended_key_usages = Vec::new();
    if server {
        params
            .extended_key_usages
            .push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    }
    if client {
        params
            .extended_key_usages
            .push(rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    }
    let ia5 = |text: &str| {
        rcgen::string::Ia5String::try_from(text)
            .map_err(|e| PkiError::InvalidTemplate(format!("{text:?}: {e}")))
    };
    params.subject_alt_names = template
        .sans
        .iter()
        .map(|san| {
            Ok(match san {
                SubjectAltName::Dns(name) => {
                    rcgen::SanType::DnsName(ia5(&name.to_ascii_lowercase())?)
                }
                SubjectAltName::Ip(address) => rcgen::SanType::IpAddress(*address),
                SubjectAltName::Uri(uri) => rcgen::SanType::URI(ia5(uri)?),
            })
        })
        .collect::<Result<_, PkiError>>()?;
    if !template.crl_distribution_points.is_empty() {
        params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: template.crl_distribution_points.clone(),
        }];
    }
    if !template.ca_issuers.is_empty() || !template.ocsp_responders.is_empty() {
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                ARCS_AUTHORITY_INFO_ACCESS,
                authority_info_access_der(&template.ocsp_responders, &template.ca_issuers),
            ));
    }
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method =
        rcgen::KeyIdMethod::PreSpecified(key_identifier(&template.subject_public_key_info)?);
    Ok(params)
}

/// The empty subject `Name` (an empty SEQUENCE).
pub(crate) const EMPTY_NAME: &[u8] = &[TAG_SEQUENCE, 0x00];

/// Builds the TBS of a leaf certificate from `template` and `issuer`, signs it with a
/// throwaway key of the issuer's algorithm and lints it as of `now` — the same
/// lint-before-sign path as CA certificates; the result is signed with
/// [`PreparedCertificate::sign`].
///
/// Before building, it re-checks what the caller should already have checked, so that
/// no path can skip it: the profile's values, the names ([`check_sans`]), the subject
/// key, the URLs, that the issuer may issue this profile
/// ([`LeafProfile::check_issuer`]), that the validity is ordered and inside the
/// issuer's, and that every name is inside the issuer's name constraints. These
/// refusals are [`PkiError::Leaf`]; lint errors are [`PkiError::Lint`].
pub fn prepare_leaf(
    template: &LeafTemplate,
    issuer: &IssuerInfo,
    now: OffsetDateTime,
) -> Result<PreparedCertificate, PkiError> {
    let profile = &template.profile;
    profile.check()?;
    check_sans(profile, &template.sans)?;
    leaf_key(&template.subject_public_key_info, profile)?;
    for url in template
        .crl_distribution_points
        .iter()
        .chain(&template.ocsp_responders)
        .chain(&template.ca_issuers)
    {
        check_ia5("URL", url)?;
    }
    profile.check_issuer(issuer)?;
    let not_before = whole_seconds(template.not_before);
    let not_after = whole_seconds(template.not_after);
    if not_after <= not_before {
        return Err(PkiError::InvalidTemplate(format!(
            "notAfter {not_after} is not after notBefore {not_before}"
        )));
    }
    if not_before < issuer.not_before() || not_after > issuer.not_after() {
        return Err(LeafError::ValidityOutsideIssuer {
            not_before,
            not_after,
            issuer_not_before: issuer.not_before(),
            issuer_not_after: issuer.not_after(),
        }
        .into());
    }
    if let Some(constraints) = IssuerNameConstraints::of(issuer).map_err(PkiError::Parse)? {
        for san in &template.sans {
            constraints
                .check(san)
                .map_err(|reason| LeafError::NameNotPermitted {
                    san: san.to_string(),
                    reason,
                })?;
        }
    }
    let params = leaf_params(template)?;
    let key = ThrowawayKey::generate(issuer.algorithm())?;
    let lint_der = build_lint_certificate(
        &params,
        EMPTY_NAME,
        &template.subject_public_key_info,
        issuer,
        &key,
    )?;
    let target = Target::Leaf(*profile);
    let findings = lint_target(&lint_der, target, issuer, now);
    if has_errors(&findings) {
        return Err(PkiError::Lint(findings));
    }
    PreparedCertificate::from_lint_certificate(lint_der, findings, target, issuer, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00:00.750 UTC);

    #[test]
    fn kinds_parse_and_print() {
        for kind in LeafKind::ALL {
            assert_eq!(kind.to_string().parse::<LeafKind>().unwrap(), kind);
        }
        let error = "Server".parse::<LeafKind>().unwrap_err();
        assert_eq!(error.code(), "unknown_profile");
    }

    #[test]
    fn defaults_follow_the_design() {
        let server = LeafProfile::defaults(LeafKind::Server);
        assert_eq!(server.default_ttl, Duration::hours(24));
        assert_eq!(server.max_ttl, Duration::hours(72));
        assert!(server.allow_ip_sans && !server.allow_wildcards && !server.allow_ed25519);
        for kind in [LeafKind::Client, LeafKind::Workload] {
            let profile = LeafProfile::defaults(kind);
            assert_eq!(profile.default_ttl, Duration::hours(12));
            assert_eq!(profile.max_ttl, Duration::hours(48));
            assert!(!profile.allow_ip_sans);
            assert_eq!(profile.backdate, Duration::minutes(1));
            profile.check().unwrap();
        }
        let mut bad = server;
        bad.backdate = Duration::hours(2);
        assert!(bad.check().is_err());
        bad = server;
        bad.default_ttl = Duration::hours(100);
        assert!(bad.check().is_err());
    }

    #[test]
    fn validity_refuses_rather_than_caps_the_caller() {
        let profile = LeafProfile::defaults(LeafKind::Server);
        let issuer_end = datetime!(2030-01-01 00:00 UTC);
        let start = datetime!(2026-03-01 12:00:00 UTC);
        let (not_before, not_after) = profile.validity(NOW, None, issuer_end).unwrap();
        assert_eq!(not_before, start - Duration::minutes(1));
        assert_eq!(not_after, start + Duration::hours(24));
        let (_, not_after) = profile
            .validity(NOW, Some(Duration::hours(72)), issuer_end)
            .unwrap();
        assert_eq!(not_after, start + Duration::hours(72));
        let error = profile
            .validity(NOW, Some(Duration::hours(73)), issuer_end)
            .unwrap_err();
        assert_eq!(error.code(), "ttl_too_long");
        for requested in [Duration::ZERO, Duration::hours(-1)] {
            let error = profile
                .validity(NOW, Some(requested), issuer_end)
                .unwrap_err();
            assert_eq!(error.code(), "invalid_ttl");
        }
        // The issuer's end caps silently.
        let soon = start + Duration::hours(2);
        let (_, not_after) = profile.validity(NOW, None, soon).unwrap();
        assert_eq!(not_after, soon);
        let error = profile.validity(NOW, None, start).unwrap_err();
        assert_eq!(error.code(), "issuer_not_valid");
    }
}
