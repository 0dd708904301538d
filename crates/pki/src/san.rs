//! Subject alternative names of leaf certificates and the rules each profile applies
//! to them: DNS names in preferred syntax (RFC 1034 §3.5, RFC 1123 §2.1, RFC 5280
//! §4.2.1.6), IP addresses, and SPIFFE IDs (SPIFFE-ID §2, X509-SVID §2).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;

use crate::{LeafError, LeafKind, LeafProfile};

/// Most names one certificate may carry.
pub const MAX_SANS: usize = 100;
/// Longest SPIFFE ID, in bytes (SPIFFE-ID §2.3).
pub const MAX_SPIFFE_ID_BYTES: usize = 2048;
/// Longest SPIFFE trust domain name, in bytes (SPIFFE-ID §2.1).
const MAX_TRUST_DOMAIN_BYTES: usize = 255;

/// One subject alternative name of a leaf certificate.
///
/// `Display` and `FromStr` use `dns:www.example.com`, `ip:192.0.2.1`, `ip:2001:db8::1`
/// and `uri:spiffe://prod.example.com/payments/api` (the prefix is case-insensitive
/// when parsed). Parsing checks only the form; [`check_sans`] applies the rules.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SubjectAltName {
    /// A dNSName. DNS names are case-insensitive; certificates carry them in lower case.
    Dns(String),
    /// An iPAddress.
    Ip(IpAddr),
    /// A uniformResourceIdentifier (in Carimbo, a SPIFFE ID).
    Uri(String),
}

impl fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => write!(f, "dns:{name}"),
            Self::Ip(address) => write!(f, "ip:{address}"),
            Self::Uri(uri) => write!(f, "uri:{uri}"),
        }
    }
}

impl FromStr for SubjectAltName {
    type Err = LeafError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| LeafError::InvalidSan {
            san: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, value) = text
            .split_once(':')
            .ok_or_else(|| invalid("expected dns:NAME, ip:ADDRESS or uri:URI"))?;
        if value.is_empty() {
            return Err(invalid("empty value"));
        }
        match kind.to_ascii_lowercase().as_str() {
            "dns" => Ok(Self::Dns(value.to_ascii_lowercase())),
            "ip" => value
                .parse()
                .map(Self::Ip)
                .map_err(|_| invalid("not an IPv4 or IPv6 address")),
            "uri" => Ok(Self::Uri(value.to_owned())),
            _ => Err(invalid("expected dns:NAME, ip:ADDRESS or uri:URI")),
        }
    }
}

impl SubjectAltName {
    /// The name as it is compared for duplicates (DNS names in lower case).
    fn normalised(&self) -> Self {
        match self {
            Self::Dns(name) => Self::Dns(name.to_ascii_lowercase()),
            other => other.clone(),
        }
    }

    /// The name from a parsed general name; only dNSName, iPAddress (4 or 16 octets)
    /// and uniformResourceIdentifier are supported.
    pub(crate) fn from_general_name(name: &GeneralName<'_>) -> Result<Self, LeafError> {
        match name {
            GeneralName::DNSName(dns) => Ok(Self::Dns(dns.to_ascii_lowercase())),
            GeneralName::URI(uri) => Ok(Self::Uri((*uri).to_owned())),
            GeneralName::IPAddress(bytes) => {
                ip_from_octets(bytes).ok_or_else(|| LeafError::InvalidSan {
                    san: format!("ip:{}", hex::encode(bytes)),
                    reason: format!(
                        "an iPAddress is 4 or 16 octets, not {} (RFC 5280 §4.2.1.6)",
                        bytes.len()
                    ),
                })
            }
            other => Err(LeafError::InvalidSan {
                san: other.to_string(),
                reason: "only DNS names, IP addresses and URIs are issued".into(),
            }),
        }
    }
}

/// The address in 4 (IPv4) or 16 (IPv6) octets.
pub(crate) fn ip_from_octets(bytes: &[u8]) -> Option<SubjectAltName> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|octets| SubjectAltName::Ip(IpAddr::from(octets))),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|octets| SubjectAltName::Ip(IpAddr::from(octets))),
        _ => None,
    }
}

/// Checks `name` as a dNSName in preferred name syntax (RFC 1034 §3.5 as relaxed by
/// RFC 1123 §2.1, RFC 5280 §4.2.1.6): ASCII letters, digits and hyphens; labels of 1
/// to 63 octets not starting or ending with a hyphen; at most 253 octets; no trailing
/// dot; the last label not all digits (that is an IP address). A wildcard is allowed
/// only as the whole leftmost label, followed by at least two labels (`*.example.com`).
/// Internationalised names must be given as A-labels (`xn--…`). Upper-case letters
/// are accepted here (DNS is case-insensitive); certificates carry lower case.
///
/// Returns whether the name is a wildcard.
pub(crate) fn check_dns_syntax(name: &str) -> Result<bool, String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if !name.is_ascii() {
        return Err("not ASCII: internationalised names are written as A-labels (xn--…)".into());
    }
    if name.ends_with('.') {
        return Err("trailing dot: write the name without the root label".into());
    }
    if name.len() > 253 {
        return Err(format!("{} octets long; at most 253", name.len()));
    }
    let labels: Vec<&str> = name.split('.').collect();
    let wildcard = labels.first() == Some(&"*");
    let rest = if wildcard { &labels[1..] } else { &labels[..] };
    if wildcard && rest.len() < 2 {
        return Err("a wildcard needs at least two labels after it (*.example.com)".into());
    }
    for label in rest {
        if label.is_empty() {
            return Err("empty label".into());
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} is longer than 63 octets"));
        }
        if label.contains('*') {
            return Err("a wildcard is allowed only as the whole leftmost label".into());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
        {
            return Err(format!(
                "character {c:?} in label {label:?} (letters, digits and hyphens only)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with a hyphen"));
        }
    }
    if rest
        .last()
        .is_some_and(|label| label.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the last label is numeric: IP addresses go in ip: names".into());
    }
    Ok(wildcard)
}

/// Checks `id` as the SPIFFE ID of a workload (SPIFFE-ID §2): `spiffe://` in lower
/// case; a trust domain of lower-case letters, digits, `.`, `-` and `_` (at most 255
/// octets, so no port or user info); a non-empty path of segments of letters, digits,
/// `.`, `-` and `_`, none empty, `.` or `..`, no trailing slash; no query or fragment;
/// at most 2048 octets.
pub(crate) fn check_spiffe_id(id: &str) -> Result<(), String> {
    if id.len() > MAX_SPIFFE_ID_BYTES {
        return Err(format!(
            "{} octets long; at most {MAX_SPIFFE_ID_BYTES}",
            id.len()
        ));
    }
    let Some(rest) = id.strip_prefix("spiffe://") else {
        return Err(if id.to_ascii_lowercase().starts_with("spiffe://") {
            "the scheme is written in lower case: spiffe://".into()
        } else {
            "not a spiffe:// URI".into()
        });
    };
    let (trust_domain, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if trust_domain.is_empty() {
        return Err("empty trust domain".into());
    }
    if trust_domain.len() > MAX_TRUST_DOMAIN_BYTES {
        return Err(format!(
            "the trust domain is longer than {MAX_TRUST_DOMAIN_BYTES} octets"
        ));
    }
    for c in trust_domain.chars() {
        let problem = match c {
            'a'..='z' | '0'..='9' | '.' | '-' | '_' => continue,
            '@' => "user info is not allowed".to_string(),
            ':' => "a port is not allowed".to_string(),
            '?' => "a query is not allowed".to_string(),
            '#' => "a fragment is not allowed".to_string(),
            'A'..='Z' => "the trust domain is written in lower case".to_string(),
            other => format!("character {other:?} is not allowed in a trust domain"),
        };
        return Err(problem);
    }
    if path.is_empty() {
        return Err("no path: a workload's SPIFFE ID names a path below the trust domain".into());
    }
    if path.contains('?') {
        return Err("a query is not allowed".into());
    }
    if path.contains('#') {
        return Err("a fragment is not allowed".into());
    }
    if path.ends_with('/') {
        return Err("trailing slash in the path".into());
    }
    for segment in path[1..].split('/') {
        match segment {
            "" => return Err("empty path segment".into()),
            "." | ".." => return Err(format!("path segment {segment:?} is not allowed")),
            _ => {}
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && !matches!(c, '.' | '-' | '_'))
        {
            return Err(format!(
                "character {c:?} in path segment {segment:?} (letters, digits, '.', '-' and '_' only)"
            ));
        }
    }
    Ok(())
}

/// Checks an IP address a certificate may name: not unspecified, multicast or the
/// IPv4 broadcast address.
fn check_ip(address: &IpAddr) -> Result<(), String> {
    let bad = match address {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    };
    if bad {
        Err("unspecified, multicast and broadcast addresses name no host".into())
    } else {
        Ok(())
    }
}

/// Checks `sans` against `profile`:
///
/// - at least one name, at most [`MAX_SANS`], none twice (DNS names compare
///   case-insensitively);
/// - **server**: DNS names (wildcards only with `allow_wildcards`) and, with
///   `allow_ip_sans`, IP addresses; no URIs;
/// - **client**: exactly one URI, a SPIFFE ID, plus optional DNS names (no wildcards);
///   no IP addresses;
/// - **workload** (SPIFFE X509-SVID): exactly one URI, a SPIFFE ID, and nothing else.
///
/// DNS names follow preferred name syntax, SPIFFE IDs the SPIFFE-ID rules (see the
/// error variants). The first problem found is returned.
pub fn check_sans(profile: &LeafProfile, sans: &[SubjectAltName]) -> Result<(), LeafError> {
    let kind = profile.kind;
    if sans.is_empty() {
        return Err(LeafError::NoSan);
    }
    if sans.len() > MAX_SANS {
        return Err(LeafError::TooManySans {
            count: sans.len(),
            max: MAX_SANS,
        });
    }
    let normalised: Vec<SubjectAltName> = sans.iter().map(SubjectAltName::normalised).collect();
    for (index, san) in normalised.iter().enumerate() {
        if normalised[..index].contains(san) {
            return Err(LeafError::DuplicateSan {
                san: sans[index].to_string(),
            });
        }
    }
    if matches!(kind, LeafKind::Client | LeafKind::Workload) {
        let count = sans
            .iter()
            .filter(|san| matches!(san, SubjectAltName::Uri(_)))
            .count();
        if count != 1 {
            return Err(LeafError::UriSanCount {
                count,
                profile: kind,
            });
        }
    }
    let not_allowed = |san: &SubjectAltName| LeafError::SanNotAllowedByProfile {
        san: san.to_string(),
        profile: kind,
    };
    for san in sans {
        match san {
            SubjectAltName::Dns(name) => {
                if kind == LeafKind::Workload {
                    return Err(not_allowed(san));
                }
                let wildcard = check_dns_syntax(name).map_err(|reason| LeafError::InvalidSan {
                    san: san.to_string(),
                    reason,
                })?;
                if wildcard && !(kind == LeafKind::Server && profile.allow_wildcards) {
                    return Err(LeafError::WildcardNotAllowed {
                        san: san.to_string(),
                        profile: kind,
                    });
                }
            }
            SubjectAltName::Ip(address) => {
                if kind != LeafKind::Server {
                    return Err(not_allowed(san));
                }
                if !profile.allow_ip_sans {
                    return Err(LeafError::IpSanNotAllowed {
                        san: san.to_string(),
                        profile: kind,
                    });
                }
                check_ip(address).map_err(|reason| LeafError::InvalidSan {
                    san: san.to_string(),
                    reason,
                })?;
            }
            SubjectAltName::Uri(uri) => {
                if kind == LeafKind::Server {
                    return Err(not_allowed(san));
                }
                check_spiffe_id(uri).map_err(|reason| LeafError::InvalidSpiffeId {
                    id: uri.clone(),
                    reason,
                })?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sans(texts: &[&str]) -> Vec<SubjectAltName> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    fn code(kind: LeafKind, texts: &[&str]) -> &'static str {
        match check_sans(&LeafProfile::defaults(kind), &sans(texts)) {
            Ok(()) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn names_round_trip_through_text() {
        for text in [
            "dns:www.example.com",
            "ip:192.0.2.1",
            "ip:2001:db8::1",
            "uri:spiffe://prod.example.com/payments/api",
        ] {
            let san: SubjectAltName = text.parse().unwrap();
            assert_eq!(san.to_string(), text);
        }
        assert_eq!(
            "DNS:WWW.Example.COM".parse::<SubjectAltName>().unwrap(),
            SubjectAltName::Dns("www.example.com".into())
        );
        for bad in ["www.example.com", "dns:", "ip:300.1.1.1", "email:a@b.c"] {
            let error = bad.parse::<SubjectAltName>().unwrap_err();
            assert_eq!(error.code(), "invalid_san", "{bad}");
        }
    }

    #[test]
    fn dns_syntax() {
        for good in [
            "example.com",
            "a.b.example.com",
            "localhost",
            "xn--bcher-kva.example",
            "a-b.example.com",
            "1a.example.com",
            &format!("{}.example.com", "a".repeat(63)),
        ] {
            assert_eq!(check_dns_syntax(good), Ok(false), "{good}");
        }
        assert_eq!(check_dns_syntax("*.example.com"), Ok(true));
        for bad in [
            "",
            "example.com.",
            "a..example.com",
            ".example.com",
            "-a.example.com",
            "a-.example.com",
            "a_b.example.com",
            "a b.example.com",
            "bücher.example",
            "*.com",
            "a.*.example.com",
            "f*o.example.com",
            "**.example.com",
            "192.0.2.1",
            &format!("{}.example.com", "a".repeat(64)),
            &format!("{}.com", "a.".repeat(126)),
        ] {
            assert!(check_dns_syntax(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn spiffe_id_syntax() {
        for good in [
            "spiffe://prod.example.com/payments/api",
            "spiffe://td/a",
            "spiffe://my_td-1.example/ns/default/sa/web.v1",
        ] {
            assert_eq!(check_spiffe_id(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("https://prod.example.com/x", "not a spiffe"),
            ("SPIFFE://prod.example.com/x", "lower case"),
            ("spiffe:///x", "empty trust domain"),
            ("spiffe://Prod.example.com/x", "lower case"),
            ("spiffe://prod.example.com:443/x", "port"),
            ("spiffe://user@prod.example.com/x", "user info"),
            ("spiffe://prod.example.com", "no path"),
            ("spiffe://prod.example.com/", "trailing slash"),
            ("spiffe://prod.example.com/a/", "trailing slash"),
            ("spiffe://prod.example.com/a//b", "empty path segment"),
            ("spiffe://prod.example.com/a/./b", "\".\""),
            ("spiffe://prod.example.com/a/../b", "\"..\""),
            ("spiffe://prod.example.com/a?x=1", "query"),
            ("spiffe://prod.example.com/a#f", "fragment"),
            ("spiffe://prod.example.com/a%20b", "'%'"),
            ("spiffe://prod.example.com/a b", "' '"),
        ] {
            let error = check_spiffe_id(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
        let long = format!("spiffe://td/{}", "a".repeat(MAX_SPIFFE_ID_BYTES));
        assert!(check_spiffe_id(&long).unwrap_err().contains("2048"));
    }

    #[test]
    fn server_profile_rules() {
        use LeafKind::Server;
        assert_eq!(code(Server, &["dns:www.example.com"]), "ok");
        assert_eq!(code(Server, &["dns:a.example.com", "ip:192.0.2.7"]), "ok");
        assert_eq!(code(Server, &["ip:2001:db8::7"]), "ok");
        assert_eq!(code(Server, &[]), "no_san");
        assert_eq!(code(Server, &["dns:*.example.com"]), "wildcard_not_allowed");
        assert_eq!(
            code(Server, &["uri:spiffe://td/a"]),
            "san_not_allowed_by_profile"
        );
        assert_eq!(code(Server, &["dns:a_b.example.com"]), "invalid_san");
        assert_eq!(code(Server, &["ip:0.0.0.0"]), "invalid_san");
        assert_eq!(code(Server, &["ip:224.0.0.1"]), "invalid_san");
        assert_eq!(
            code(Server, &["dns:a.example.com", "dns:A.EXAMPLE.com"]),
            "duplicate_san"
        );
        let mut profile = LeafProfile::defaults(Server);
        profile.allow_wildcards = true;
        profile.allow_ip_sans = false;
        assert!(check_sans(&profile, &sans(&["dns:*.example.com"])).is_ok());
        let error = check_sans(&profile, &sans(&["ip:192.0.2.1"])).unwrap_err();
        assert_eq!(error.code(), "ip_san_not_allowed");
        let many: Vec<SubjectAltName> = (0..=MAX_SANS)
            .map(|n| SubjectAltName::Dns(format!("h{n}.example.com")))
            .collect();
        let error = check_sans(&LeafProfile::defaults(Server), &many).unwrap_err();
        assert_eq!(error.code(), "too_many_sans");
    }

    #[test]
    fn client_profile_rules() {
        use LeafKind::Client;
        assert_eq!(code(Client, &["uri:spiffe://td/client"]), "ok");
        assert_eq!(
            code(
                Client,
                &["uri:spiffe://td/client", "dns:client.example.com"]
            ),
            "ok"
        );
        assert_eq!(code(Client, &["dns:client.example.com"]), "uri_san_count");
        assert_eq!(
            code(Client, &["uri:spiffe://td/a", "uri:spiffe://td/b"]),
            "uri_san_count"
        );
        assert_eq!(
            code(Client, &["uri:spiffe://td/a", "ip:192.0.2.1"]),
            "san_not_allowed_by_profile"
        );
        assert_eq!(
            code(Client, &["uri:spiffe://td/a", "dns:*.example.com"]),
            "wildcard_not_allowed"
        );
        assert_eq!(code(Client, &["uri:https://td/a"]), "invalid_spiffe_id");
    }

    #[test]
    fn workload_profile_rules() {
        use LeafKind::Workload;
        assert_eq!(code(Workload, &["uri:spiffe://prod.example.com/api"]), "ok");
        assert_eq!(
            code(Workload, &["uri:spiffe://td/a", "dns:a.example.com"]),
            "san_not_allowed_by_profile"
        );
        assert_eq!(
            code(Workload, &["uri:spiffe://td/a", "ip:192.0.2.1"]),
            "san_not_allowed_by_profile"
        );
        assert_eq!(code(Workload, &["uri:spiffe://td"]), "invalid_spiffe_id");
        assert_eq!(code(Workload, &["uri:spiffe://td/a/"]), "invalid_spiffe_id");
        assert_eq!(
            code(Workload, &["uri:spiffe://td/a", "uri:spiffe://td/a"]),
            "duplicate_san"
        );
        assert_eq!(code(Workload, &[]), "no_san");
    }
}
