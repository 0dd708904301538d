//! Who may use which KMS key for what: deny by default; allowed by a rule of the config
//! (identity pattern × key pattern × operations × purposes, with optional context
//! constraints) or by a live grant stored by an administrator. Every decision names
//! what decided it, for the audit trail.
//!
//! Patterns: `*` matches any run of characters without `/`, `**` any run including `/`;
//! everything else matches itself. `envelope-data/prod/*` matches the keys of one use
//! and environment, `spiffe://example.com/ns/ml/**` every workload of a namespace.
//!
//! Keys of purpose `pki-ca` (CA keys) are outside the policy: no rule or grant reaches
//! them (see [`is_ca_key`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use carimbo_kms::{EncryptionContext, KeyName, Purpose};
use carimbo_store::KmsGrant;

/// An operation of the KMS API that the policy governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KmsOperation {
    /// Seal a payload in an envelope.
    Encrypt,
    /// Open an envelope, or unwrap a data key.
    Decrypt,
    /// Make a data key (wrapped, and optionally in plaintext).
    Datakey,
    /// Re-wrap an envelope's data key under the key's primary version.
    Rewrap,
    /// Sign a message.
    Sign,
    /// Verify a signature.
    Verify,
    /// Compute an HMAC.
    Hmac,
    /// Verify an HMAC.
    VerifyHmac,
    /// Read a signing key's public key (to verify offline).
    PublicKey,
}

impl KmsOperation {
    /// Every operation.
    pub const ALL: [Self; 9] = [
        Self::Encrypt,
        Self::Decrypt,
        Self::Datakey,
        Self::Rewrap,
        Self::Sign,
        Self::Verify,
        Self::Hmac,
        Self::VerifyHmac,
        Self::PublicKey,
    ];

    /// The name used in configs, URLs and audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::Datakey => "datakey",
            Self::Rewrap => "rewrap",
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::Hmac => "hmac",
            Self::VerifyHmac => "verify-hmac",
            Self::PublicKey => "public-key",
        }
    }
}

impl fmt::Display for KmsOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KmsOperation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown KMS operation {text:?} (expected one of: {})",
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })
    }
}

/// One allow rule of the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsRule {
    /// Identity patterns (any may match).
    pub identities: Vec<String>,
    /// Key name patterns (any may match).
    pub keys: Vec<String>,
    /// Operations allowed.
    pub operations: Vec<KmsOperation>,
    /// Purposes the key must have; empty: any (except `pki-ca`, never reachable).
    pub purposes: Vec<Purpose>,
    /// Entries the request's encryption context must contain with these values
    /// (values are patterns too). Only operations with a context (encrypt, decrypt,
    /// datakey, rewrap) can match a rule with constraints.
    pub context: BTreeMap<String, String>,
}

/// What the policy is asked.
#[derive(Clone, Copy, Debug)]
pub struct KmsRequest<'a> {
    /// The authenticated caller (`client:payments`, `spiffe://…`).
    pub identity: &'a str,
    /// The key.
    pub key: &'a KeyName,
    /// The key's purpose, if the key exists (a missing key can only match rules and
    /// grants without purpose constraints; the request then fails as not found).
    pub purpose: Option<Purpose>,
    /// The operation.
    pub operation: KmsOperation,
    /// The request's encryption context, for operations that have one.
    pub context: Option<&'a EncryptionContext>,
}

/// The policy's answer, with what decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by rule `index` of `kms.rules` (from 0).
    AllowedByRule(usize),
    /// Allowed by the grant with this id.
    AllowedByGrant(String),
    /// Nothing allowed it.
    Denied,
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Self::Denied)
    }

    /// What decided, as written in audit events: `rule:2`, `grant:0a1b…`, `default-deny`.
    pub fn decided_by(&self) -> String {
        match self {
            Self::AllowedByRule(index) => format!("rule:{index}"),
            Self::AllowedByGrant(id) => format!("grant:{id}"),
            Self::Denied => "default-deny".into(),
        }
    }
}

/// Whether `name` or `purpose` makes a key a CA key, which the KMS API never reaches.
pub fn is_ca_key(name: &KeyName, purpose: Option<Purpose>) -> bool {
    purpose == Some(Purpose::PkiCa) || name.as_str().starts_with("pki-ca/")
}

/// Whether `pattern` matches `text` (`*`: no `/`; `**`: anything).
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    fn go(pattern: &[u8], text: &[u8]) -> bool {
        match pattern {
            [] => text.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=text.len()).any(|skip| go(rest, &text[skip..])),
            [b'*', rest @ ..] => {
                let limit = text.iter().position(|&c| c == b'/').unwrap_or(text.len());
                (0..=limit).any(|skip| go(rest, &text[skip..]))
            }
            [first, rest @ ..] => text.first() == Some(first) && go(rest, &text[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn any_matches(patterns: &[String], text: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| pattern_matches(pattern, text))
}

impl KmsRule {
    fn allows(&self, request: &KmsRequest<'_>) -> bool {
        if !self.operations.contains(&request.operation)
            || !any_matches(&self.identities, request.identity)
            || !any_matches(&self.keys, request.key.as_str())
        {
            return false;
        }
        if !self.purposes.is_empty()
            && !request
                .purpose
                .is_some_and(|purpose| self.purposes.contains(&purpose))
        {
            return false;
        }
        if self.context.is_empty() {
            return true;
        }
        let Some(context) = request.context else {
            return false;
        };
        self.context.iter().all(|(key, pattern)| {
            context
                .iter()
                .any(|(k, v)| k == key && pattern_matches(pattern, v))
        })
    }
}

fn grant_allows(grant: &KmsGrant, request: &KmsRequest<'_>) -> bool {
    pattern_matches(&grant.identity, request.identity)
        && any_matches(&grant.keys, request.key.as_str())
        && grant
            .operations
            .iter()
            .any(|op| op == request.operation.as_str())
}

/// Decides `request` against `rules`, then the live `grants` (callers read grants only
/// when no rule allows, see [`decide_by_rules`]). CA keys are always denied.
pub fn decide(rules: &[KmsRule], grants: &[KmsGrant], request: &KmsRequest<'_>) -> Decision {
    match decide_by_rules(rules, request) {
        Decision::Denied => {}
        allowed => return allowed,
    }
    if is_ca_key(request.key, request.purpose) {
        return Decision::Denied;
    }
    grants
        .iter()
        .find(|grant| grant_allows(grant, request))
        .map_or(Decision::Denied, |grant| {
            Decision::AllowedByGrant(grant.id.clone())
        })
}

/// Decides `request` against the configured rules only.
pub fn decide_by_rules(rules: &[KmsRule], request: &KmsRequest<'_>) -> Decision {
    if is_ca_key(request.key, request.purpose) {
        return Decision::Denied;
    }
    rules
        .iter()
        .position(|rule| rule.allows(request))
        .map_or(Decision::Denied, Decision::AllowedByRule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> KeyName {
        KeyName::new(text).unwrap()
    }

    fn rule() -> KmsRule {
        KmsRule {
            identities: vec![
                "client:payments".into(),
                "spiffe://example.com/ns/pay/*".into(),
            ],
            keys: vec!["envelope-data/prod/*".into()],
            operations: vec![KmsOperation::Encrypt, KmsOperation::Decrypt],
            purposes: vec![Purpose::Envelope],
            context: BTreeMap::from([("tenant".to_owned(), "acme-*".to_owned())]),
        }
    }

    #[test]
    fn patterns_match_within_or_across_segments() {
        assert!(pattern_matches(
            "envelope-data/prod/*",
            "envelope-data/prod/payments"
        ));
        assert!(!pattern_matches(
            "envelope-data/prod/*",
            "envelope-data/prod/a/b"
        ));
        assert!(pattern_matches("spiffe://x/**", "spiffe://x/ns/a/sa/b"));
        assert!(!pattern_matches("spiffe://x/*", "spiffe://x/ns/a"));
        assert!(pattern_matches("exact", "exact"));
        assert!(!pattern_matches("exact", "exactly"));
        assert!(pattern_matches("*", ""));
    }

    #[test]
    fn a_rule_allows_only_what_it_names() {
        let rules = [rule()];
        let key = name("envelope-data/prod/payments");
        let context = EncryptionContext::from_pairs(["tenant=acme-eu"]).unwrap();
        let request = KmsRequest {
            identity: "client:payments",
            key: &key,
            purpose: Some(Purpose::Envelope),
            operation: KmsOperation::Encrypt,
            context: Some(&context),
        };
        assert_eq!(decide(&rules, &[], &request), Decision::AllowedByRule(0));
        let spiffe = KmsRequest {
            identity: "spiffe://example.com/ns/pay/sa-1",
            ..request
        };
        assert!(decide(&rules, &[], &spiffe).is_allowed());
        let other_context = EncryptionContext::from_pairs(["tenant=evil"]).unwrap();
        for denied in [
            KmsRequest {
                identity: "client:other",
                ..request
            },
            KmsRequest {
                operation: KmsOperation::Sign,
                ..request
            },
            KmsRequest {
                purpose: Some(Purpose::Sign),
                ..request
            },
            KmsRequest {
                purpose: None,
                ..request
            },
            KmsRequest {
                context: None,
                ..request
            },
            KmsRequest {
                context: Some(&other_context),
                ..request
            },
        ] {
            assert_eq!(decide(&rules, &[], &denied), Decision::Denied, "{denied:?}");
        }
    }

    #[test]
    fn nothing_reaches_a_ca_key() {
        let everything = KmsRule {
            identities: vec!["**".into()],
            keys: vec!["**".into()],
            operations: KmsOperation::ALL.to_vec(),
            purposes: vec![],
            context: BTreeMap::new(),
        };
        let grant = KmsGrant {
            id: "01".into(),
            identity: "**".into(),
            keys: vec!["**".into()],
            operations: vec!["sign".into()],
            not_before: time::OffsetDateTime::UNIX_EPOCH,
            not_after: time::OffsetDateTime::now_utc() + time::Duration::days(1),
            created_by: "a".into(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            revoked_at: None,
        };
        let by_name = name("pki-ca/prod/int-server");
        let by_purpose = name("model-sign/prod/ml");
        for (key, purpose) in [
            (&by_name, Some(Purpose::Sign)),
            (&by_name, None),
            (&by_purpose, Some(Purpose::PkiCa)),
        ] {
            let request = KmsRequest {
                identity: "client:x",
                key,
                purpose,
                operation: KmsOperation::Sign,
                context: None,
            };
            assert_eq!(
                decide(
                    std::slice::from_ref(&everything),
                    std::slice::from_ref(&grant),
                    &request
                ),
                Decision::Denied
            );
        }
    }

    #[test]
    fn a_grant_allows_its_identity_keys_and_operations() {
        let key = name("model-sign/prod/ml");
        let grant = KmsGrant {
            id: "ab".into(),
            identity: "client:ci".into(),
            keys: vec!["model-sign/prod/*".into()],
            operations: vec!["sign".into()],
            not_before: time::OffsetDateTime::UNIX_EPOCH,
            not_after: time::OffsetDateTime::now_utc() + time::Duration::days(1),
            created_by: "a".into(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            revoked_at: None,
        };
        let request = KmsRequest {
            identity: "client:ci",
            key: &key,
            purpose: Some(Purpose::Sign),
            operation: KmsOperation::Sign,
            context: None,
        };
        assert_eq!(
            decide(&[], std::slice::from_ref(&grant), &request),
            Decision::AllowedByGrant("ab".into())
        );
        let verify = KmsRequest {
            operation: KmsOperation::Verify,
            ..request
        };
        assert_eq!(decide(&[], &[grant], &verify), Decision::Denied);
        assert_eq!(decide(&[], &[], &request), Decision::Denied);
    }
}
