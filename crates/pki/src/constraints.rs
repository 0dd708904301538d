//! A leaf's names against its issuer's name constraints (RFC 5280 §4.2.1.10, §6.1.3
//! (b)–(c)), checked before signing: verifiers would reject a certificate outside
//! them, so the CA refuses to make one.
//!
//! - dNSName: a constraint covers itself and every name made by adding labels on the
//!   left, on label boundaries (`example.com` covers `a.example.com`, not
//!   `badexample.com`); a leading period (`.example.com`, seen in the wild) covers only
//!   names below it. A wildcard name `*.b.example.com` is permitted when
//!   `b.example.com` is, and refused when any name it stands for is excluded.
//! - uniformResourceIdentifier: the URI's host (a SPIFFE trust domain) against a host
//!   (exact) or a `.domain` (hosts below it).
//! - iPAddress: address and mask of the same family.
//!
//! When the permitted subtrees contain a name type, every name of that type must
//! match one of them; no name may match an excluded subtree. Other name types in the
//! constraints do not apply to the names Carimbo issues.

use std::net::IpAddr;

use crate::der::{context_primitive, oid};
use crate::lints::parse_name_constraints;
use crate::raw::RawCertificate;
use crate::{IssuerInfo, SubjectAltName};

const TAG_DNS: u8 = context_primitive(2);
const TAG_URI: u8 = context_primitive(6);
const TAG_IP: u8 = context_primitive(7);

/// One base name of a subtree.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Base {
    Dns(String),
    Uri(String),
    Ip {
        address: Vec<u8>,
        mask: Vec<u8>,
    },
    /// A name type that does not apply to leaf SANs (email, directory name, ...).
    Other,
}

impl Base {
    fn from_subtree(tag: u8, value: &[u8]) -> Result<Self, String> {
        let text = || {
            std::str::from_utf8(value)
                .map(str::to_ascii_lowercase)
                .map_err(|_| "a name constraint is not ASCII".to_string())
        };
        Ok(match tag {
            TAG_DNS => Self::Dns(text()?),
            TAG_URI => Self::Uri(text()?),
            TAG_IP => match value.len() {
                8 | 32 => {
                    let (address, mask) = value.split_at(value.len() / 2);
                    Self::Ip {
                        address: address.to_vec(),
                        mask: mask.to_vec(),
                    }
                }
                n => return Err(format!("an iPAddress constraint of {n} octets")),
            },
            _ => Self::Other,
        })
    }

    fn describe(&self) -> String {
        match self {
            Self::Dns(name) => format!("dNSName {name:?}"),
            Self::Uri(host) => format!("URI host {host:?}"),
            Self::Ip { address, mask } => {
                format!("iPAddress {}/{}", hex::encode(address), hex::encode(mask))
            }
            Self::Other => "another name type".into(),
        }
    }
}

/// The name constraints of an issuer certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IssuerNameConstraints {
    permitted: Vec<Base>,
    excluded: Vec<Base>,
}

/// Whether `name` is `domain` or below it, on a label boundary; a `domain` with a
/// leading period covers only names strictly below it; an empty one covers all.
fn dns_within(name: &str, domain: &str) -> bool {
    if domain.is_empty() {
        return true;
    }
    if domain.starts_with('.') {
        return name.len() > domain.len() && name.ends_with(domain);
    }
    name == domain
        || name
            .strip_suffix(domain)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// Whether `name` is exactly one label below `base` (what a wildcard stands for).
fn one_label_below(name: &str, base: &str) -> bool {
    name.strip_suffix(base)
        .and_then(|prefix| prefix.strip_suffix('.'))
        .is_some_and(|label| !label.is_empty() && !label.contains('.'))
}

/// Whether the DNS SAN `name` is inside the subtree `domain`; for a wildcard
/// `*.base`, whether every name it stands for (one label below `base`) is.
fn dns_permitted_by(name: &str, domain: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(base) => dns_within(base, domain.strip_prefix('.').unwrap_or(domain)),
        None => dns_within(name, domain),
    }
}

/// Whether the DNS SAN `name` reaches into the subtree `domain`; for a wildcard
/// `*.base`, whether any name it stands for does.
fn dns_excluded_by(name: &str, domain: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(base) => match domain.strip_prefix('.') {
            Some(parent) => dns_within(base, parent),
            None => dns_within(base, domain) || one_label_below(domain, base),
        },
        None => dns_within(name, domain),
    }
}

/// The host of a URI (`scheme://[userinfo@]host[:port]/...`), lower case.
fn uri_host(uri: &str) -> Option<String> {
    let (_, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = host.rsplit_once(':').map_or(host, |(host, _)| host);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn uri_host_within(host: &str, constraint: &str) -> bool {
    match constraint.strip_prefix('.') {
        Some(_) => host.ends_with(constraint),
        None => host == constraint,
    }
}

fn ip_within(address: &IpAddr, base: &[u8], mask: &[u8]) -> bool {
    let octets = match address {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    octets.len() == base.len()
        && octets
            .iter()
            .zip(base)
            .zip(mask)
            .all(|((a, b), m)| a & m == b & m)
}

/// Whether the constraint `base` applies to `san`'s type, and if so whether it covers
/// it (`permitted`: the whole name is inside; otherwise: any part reaches inside).
fn covers(base: &Base, san: &SubjectAltName, permitted: bool) -> Option<bool> {
    match (base, san) {
        (Base::Dns(domain), SubjectAltName::Dns(name)) => {
            let name = name.to_ascii_lowercase();
            Some(if permitted {
                dns_permitted_by(&name, domain)
            } else {
                dns_excluded_by(&name, domain)
            })
        }
        (Base::Uri(constraint), SubjectAltName::Uri(uri)) => {
            Some(uri_host(uri).is_some_and(|host| uri_host_within(&host, constraint)))
        }
        (Base::Ip { address, mask }, SubjectAltName::Ip(ip)) => Some(ip_within(ip, address, mask)),
        _ => None,
    }
}

impl IssuerNameConstraints {
    /// Parses a nameConstraints extension value.
    pub(crate) fn from_extension(value: &[u8]) -> Result<Self, String> {
        let raw = parse_name_constraints(value)?;
        let bases = |subtrees: Option<Vec<crate::lints::Subtree<'_>>>| {
            subtrees
                .unwrap_or_default()
                .iter()
                .map(|s| Base::from_subtree(s.tag, s.value))
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(Self {
            permitted: bases(raw.permitted)?,
            excluded: bases(raw.excluded)?,
        })
    }

    /// The constraints of `issuer`'s certificate, `None` when it has none (or no
    /// certificate).
    pub(crate) fn of(issuer: &IssuerInfo) -> Result<Option<Self>, String> {
        let Some(der) = issuer.certificate_der() else {
            return Ok(None);
        };
        let raw = RawCertificate::parse(der).map_err(|e| format!("issuer certificate: {e}"))?;
        match raw.extension(oid::NAME_CONSTRAINTS) {
            Some(extension) => Self::from_extension(extension.value).map(Some),
            None => Ok(None),
        }
    }

    /// Checks one name; `Err` says which constraint refuses it.
    pub(crate) fn check(&self, san: &SubjectAltName) -> Result<(), String> {
        for base in &self.excluded {
            if covers(base, san, false) == Some(true) {
                return Err(format!("{san} is inside the excluded {}", base.describe()));
            }
        }
        let applicable: Vec<&Base> = self
            .permitted
            .iter()
            .filter(|base| covers(base, san, true).is_some())
            .collect();
        if applicable.is_empty()
            || applicable
                .iter()
                .any(|b| covers(b, san, true) == Some(true))
        {
            return Ok(());
        }
        let list: Vec<String> = applicable.iter().map(|b| b.describe()).collect();
        Err(format!(
            "{san} is outside the permitted {}",
            list.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constraints(permitted: &[Base], excluded: &[Base]) -> IssuerNameConstraints {
        IssuerNameConstraints {
            permitted: permitted.to_vec(),
            excluded: excluded.to_vec(),
        }
    }

    fn dns(name: &str) -> SubjectAltName {
        SubjectAltName::Dns(name.into())
    }

    #[test]
    fn dns_suffixes_match_on_label_boundaries() {
        assert!(dns_within("example.com", "example.com"));
        assert!(dns_within("a.b.example.com", "example.com"));
        assert!(!dns_within("badexample.com", "example.com"));
        assert!(!dns_within("example.com", ".example.com"));
        assert!(dns_within("a.example.com", ".example.com"));
        assert!(dns_within("anything", ""));
    }

    #[test]
    fn permitted_and_excluded_dns() {
        let c = constraints(
            &[Base::Dns("svc.example.com".into())],
            &[Base::Dns("legacy.svc.example.com".into())],
        );
        assert!(c.check(&dns("svc.example.com")).is_ok());
        assert!(c.check(&dns("api.svc.example.com")).is_ok());
        assert!(c.check(&dns("API.Svc.Example.com")).is_ok());
        let error = c.check(&dns("api.example.com")).unwrap_err();
        assert!(
            error.contains("outside the permitted dNSName \"svc.example.com\""),
            "{error}"
        );
        assert!(c.check(&dns("badsvc.example.com")).is_err());
        let error = c.check(&dns("x.legacy.svc.example.com")).unwrap_err();
        assert!(error.contains("excluded"), "{error}");
        // Wildcards: inside when their base is; refused when they reach an exclusion.
        assert!(c.check(&dns("*.api.svc.example.com")).is_ok());
        assert!(c.check(&dns("*.svc.example.com")).is_err());
        assert!(c.check(&dns("*.example.com")).is_err());
        assert!(c.check(&dns("*.legacy.svc.example.com")).is_err());
        // IPs and URIs are unconstrained when no subtree of their type exists.
        assert!(
            c.check(&SubjectAltName::Ip("192.0.2.1".parse().unwrap()))
                .is_ok()
        );
        assert!(
            c.check(&SubjectAltName::Uri("spiffe://td/x".into()))
                .is_ok()
        );
    }

    #[test]
    fn uri_hosts_and_ip_ranges() {
        let c = constraints(
            &[
                Base::Uri("prod.example.com".into()),
                Base::Uri(".mesh.example.com".into()),
                Base::Ip {
                    address: vec![10, 0, 0, 0],
                    mask: vec![255, 0, 0, 0],
                },
            ],
            &[],
        );
        let uri = |u: &str| SubjectAltName::Uri(u.into());
        assert!(c.check(&uri("spiffe://prod.example.com/api")).is_ok());
        assert!(c.check(&uri("spiffe://a.mesh.example.com/api")).is_ok());
        assert!(c.check(&uri("spiffe://mesh.example.com/api")).is_err());
        assert!(c.check(&uri("spiffe://dev.example.com/api")).is_err());
        assert!(c.check(&uri("spiffe://x.prod.example.com/api")).is_err());
        let ip = |a: &str| SubjectAltName::Ip(a.parse().unwrap());
        assert!(c.check(&ip("10.1.2.3")).is_ok());
        assert!(c.check(&ip("192.0.2.1")).is_err());
        assert!(c.check(&ip("2001:db8::1")).is_err());
        assert!(c.check(&dns("anything.example.org")).is_ok());
    }

    #[test]
    fn extension_values_parse() {
        let value = crate::NameConstraints {
            permitted_dns: vec!["Example.com".into()],
            excluded_dns: vec!["bad.example.com".into()],
            permitted_uri_hosts: vec!["td.example.com".into()],
        }
        .to_der();
        let parsed = IssuerNameConstraints::from_extension(&value).unwrap();
        assert_eq!(
            parsed,
            constraints(
                &[
                    Base::Dns("example.com".into()),
                    Base::Uri("td.example.com".into())
                ],
                &[Base::Dns("bad.example.com".into())]
            )
        );
    }
}
