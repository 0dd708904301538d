//! Provisioners and their name policy: deny by default; a provisioner grants only the
//! profiles, SAN patterns and lifetimes its config lists.

use carimbo_pki::{LeafKind, SubjectAltName};

use crate::config::ProvisionerSection;

/// A SAN pattern: `dns:*.lab.example.com` (`*` = exactly one label; `**.example.com`
/// = any subdomain; `dns:**` = any name),
/// `uri:spiffe://lab/ns/*/sa/*` (`*` = one path segment, a trailing `**` = the rest),
/// `ip:10.1.2.3` or `ip:*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SanPattern {
    /// DNS name pattern, lowercase.
    Dns(String),
    /// URI pattern.
    Uri(String),
    /// One IP address, or any (`None`).
    Ip(Option<std::net::IpAddr>),
}

impl SanPattern {
    /// Parses `dns:…`, `uri:…` or `ip:…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (kind, value) = text
            .split_once(':')
            .ok_or_else(|| format!("SAN pattern {text:?} must start with dns:, uri: or ip:"))?;
        match kind {
            "dns" if !value.is_empty() => Ok(Self::Dns(value.to_ascii_lowercase())),
            "uri" if !value.is_empty() => Ok(Self::Uri(value.to_owned())),
            "ip" if value == "*" => Ok(Self::Ip(None)),
            "ip" => value
                .parse()
                .map(|ip| Self::Ip(Some(ip)))
                .map_err(|_| format!("{text:?} is not an IP address or ip:*")),
            _ => Err(format!(
                "SAN pattern {text:?} must start with dns:, uri: or ip:"
            )),
        }
    }

    /// Whether `san` matches.
    pub fn matches(&self, san: &SubjectAltName) -> bool {
        match (self, san) {
            (Self::Dns(pattern), SubjectAltName::Dns(name)) => {
                // Compared from the right, so `**.example.com` means any subdomain.
                let reverse = |s: &str| s.split('.').rev().collect::<Vec<_>>().join(".");
                glob(&reverse(pattern), &reverse(&name.to_ascii_lowercase()), '.')
            }
            (Self::Uri(pattern), SubjectAltName::Uri(uri)) => glob(pattern, uri, '/'),
            (Self::Ip(None), SubjectAltName::Ip(_)) => true,
            (Self::Ip(Some(allowed)), SubjectAltName::Ip(ip)) => allowed == ip,
            _ => false,
        }
    }
}

/// Matches `text` against `pattern` split on `separator`: `*` matches one whole
/// non-empty part; a final `**` matches one or more remaining parts.
fn glob(pattern: &str, text: &str, separator: char) -> bool {
    let pattern: Vec<&str> = pattern.split(separator).collect();
    let text: Vec<&str> = text.split(separator).collect();
    for (index, part) in pattern.iter().enumerate() {
        if *part == "**" && index == pattern.len() - 1 {
            return text.len() > index && text[index..].iter().all(|p| !p.is_empty());
        }
        match text.get(index) {
            Some(actual) if *part == "*" => {
                if actual.is_empty() {
                    return false;
                }
            }
            Some(actual) if actual == part => {}
            _ => return false,
        }
    }
    pattern.len() == text.len()
}

/// A provisioner, as configured.
#[derive(Clone, Debug)]
pub struct Provisioner {
    /// Name.
    pub name: String,
    /// Profiles it may grant.
    pub profiles: Vec<LeafKind>,
    /// SAN patterns it may grant.
    pub sans: Vec<SanPattern>,
    /// Longest lifetime it may grant.
    pub max_ttl: time::Duration,
    /// Longest age of a lineage before it must bootstrap again.
    pub lineage_max_age: time::Duration,
    /// Longest lifetime of its bootstrap tokens.
    pub token_lifetime: time::Duration,
    /// For JWT provisioners: the verifier (JWKS loaded, algorithms pinned).
    pub jwt: Option<std::sync::Arc<crate::jwt::JwtVerifier>>,
    /// Whether it is an ACME provisioner (its accounts order through `/acme/…`; it
    /// mints no bootstrap tokens).
    pub acme: bool,
    /// ACME: accounts need External Account Binding by one of `eab_keys`.
    pub require_eab: bool,
    /// ACME: its External Account Binding keys (loaded by the service's state).
    pub eab_keys: Vec<EabKey>,
}

/// An External Account Binding key: its id and HMAC key (never shown by `Debug`).
#[derive(Clone)]
pub struct EabKey {
    /// The key identifier.
    pub kid: String,
    /// The HMAC key.
    pub key: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for EabKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EabKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Provisioner {
    /// Builds a provisioner from its config section.
    pub fn from_config(section: &ProvisionerSection) -> Result<Self, String> {
        Self::from_config_with_jwks(section, None)
    }

    /// Builds a provisioner, loading its JWKS from `jwks` (the resolved path) for type
    /// `jwt`.
    pub fn from_config_with_jwks(
        section: &ProvisionerSection,
        jwks: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        let jwt = match (&section.jwt, jwks) {
            (Some(settings), Some(path)) => Some(std::sync::Arc::new(
                crate::jwt::JwtVerifier::from_settings(settings, path)
                    .map_err(|e| e.to_string())?,
            )),
            _ => None,
        };
        let profiles = section
            .profiles
            .iter()
            .map(|p| {
                p.parse::<LeafKind>()
                    .map_err(|_| format!("unknown profile {p:?}"))
            })
            .collect::<Result<_, _>>()?;
        let sans = section
            .sans
            .iter()
            .map(|s| SanPattern::parse(s))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: section.name.clone(),
            profiles,
            sans,
            max_ttl: section.max_ttl.0,
            lineage_max_age: section.lineage_max_age.0,
            token_lifetime: section.token_lifetime.0,
            jwt,
            acme: section.kind == "acme",
            require_eab: section.require_eab,
            eab_keys: Vec::new(),
        })
    }

    /// Refuses a profile, SANs or lifetime outside this provisioner's policy; the
    /// message names what is not allowed.
    pub fn authorize(
        &self,
        profile: LeafKind,
        sans: &[SubjectAltName],
        ttl: Option<time::Duration>,
    ) -> Result<(), String> {
        if !self.profiles.contains(&profile) {
            return Err(format!(
                "provisioner {:?} may not grant the {profile} profile",
                self.name
            ));
        }
        for san in sans {
            if !self.sans.iter().any(|pattern| pattern.matches(san)) {
                return Err(format!(
                    "provisioner {:?} may not grant the name {san}",
                    self.name
                ));
            }
        }
        if let Some(ttl) = ttl
            && ttl > self.max_ttl
        {
            return Err(format!(
                "provisioner {:?} grants at most {} seconds",
                self.name,
                self.max_ttl.whole_seconds()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(name: &str) -> SubjectAltName {
        SubjectAltName::Dns(name.into())
    }

    #[test]
    fn patterns_match_whole_parts_only() {
        let pattern = SanPattern::parse("dns:*.lab.example.com").unwrap();
        assert!(pattern.matches(&dns("a.lab.example.com")));
        assert!(pattern.matches(&dns("A.LAB.example.com")));
        assert!(!pattern.matches(&dns("a.b.lab.example.com")));
        assert!(!pattern.matches(&dns("lab.example.com")));
        assert!(!pattern.matches(&dns("a.lab.example.com.evil")));
        let uri = SanPattern::parse("uri:spiffe://lab/ns/*/sa/*").unwrap();
        assert!(uri.matches(&SubjectAltName::Uri("spiffe://lab/ns/ml/sa/svc".into())));
        assert!(!uri.matches(&SubjectAltName::Uri("spiffe://lab/ns/ml/sa/svc/x".into())));
        assert!(!uri.matches(&SubjectAltName::Uri("spiffe://lab/ns//sa/svc".into())));
        let any = SanPattern::parse("dns:**.example.com").unwrap();
        assert!(any.matches(&dns("a.b.example.com")));
        assert!(!any.matches(&dns("example.com")));
        assert!(
            SanPattern::parse("dns:**")
                .unwrap()
                .matches(&dns("localhost"))
        );
        let rest = SanPattern::parse("uri:spiffe://lab/**").unwrap();
        assert!(rest.matches(&SubjectAltName::Uri("spiffe://lab/a/b/c".into())));
        assert!(!rest.matches(&SubjectAltName::Uri("spiffe://lab".into())));
        assert!(
            !SanPattern::parse("ip:10.0.0.1")
                .unwrap()
                .matches(&SubjectAltName::Ip("10.0.0.2".parse().unwrap()))
        );
        assert!(SanPattern::parse("smtp:x").is_err());
    }
}
