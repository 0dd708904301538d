//! Property tests of KMS policy evaluation against a reference model written here:
//! random rules, grants (stored in SQLite with random validity windows, some revoked),
//! identities, keys, purposes, operations and contexts. A request is allowed exactly
//! when the model finds a matching rule or a matching grant that is live — not revoked
//! and `not_before <= now < not_after` — and never for a CA key; the decision names
//! the first matching rule, or a grant that really matches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;

use carimbo_kms::{EncryptionContext, KeyName, Purpose};
use carimbo_server::kms_policy::{Decision, KmsOperation, KmsRequest, KmsRule, decide};
use carimbo_store::{KmsGrant, KmsGrantStore, SqliteStore};
use proptest::prelude::*;
use time::{Duration, OffsetDateTime};

const PURPOSES: [Purpose; 4] = [
    Purpose::Sign,
    Purpose::Envelope,
    Purpose::Hmac,
    Purpose::PkiCa,
];
const IDENTITIES: [&str; 5] = [
    "client:payments",
    "client:pay",
    "spiffe://example.com/ns/ml/sa/trainer",
    "spiffe://example.com/ns/web/sa/front",
    "admin:alice",
];
const USES: [&str; 4] = ["envelope-data", "model-sign", "hmac-tokens", "pki-ca"];
const ENVS: [&str; 2] = ["prod", "dev"];
const NAMES: [&str; 3] = ["payments", "pay", "ml.v2"];

// ---- the reference model -------------------------------------------------------------

/// `*` matches a run without `/`, `**` any run; other bytes match themselves. A
/// table over (pattern token, text position), unlike the recursive matcher under test.
fn model_matches(pattern: &str, text: &str) -> bool {
    #[derive(Clone, Copy)]
    enum Token {
        Byte(u8),
        Star,
        DoubleStar,
    }
    let bytes = pattern.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'*') {
            tokens.push(Token::DoubleStar);
            i += 2;
        } else if bytes[i] == b'*' {
            tokens.push(Token::Star);
            i += 1;
        } else {
            tokens.push(Token::Byte(bytes[i]));
            i += 1;
        }
    }
    let text = text.as_bytes();
    // table[t][j]: tokens[t..] match text[j..].
    let mut table = vec![vec![false; text.len() + 1]; tokens.len() + 1];
    table[tokens.len()][text.len()] = true;
    for t in (0..tokens.len()).rev() {
        for j in (0..=text.len()).rev() {
            table[t][j] = match tokens[t] {
                Token::Byte(b) => j < text.len() && text[j] == b && table[t + 1][j + 1],
                Token::Star => {
                    table[t + 1][j] || (j < text.len() && text[j] != b'/' && table[t][j + 1])
                }
                Token::DoubleStar => table[t + 1][j] || (j < text.len() && table[t][j + 1]),
            };
        }
    }
    table[0][0]
}

#[derive(Clone, Debug)]
struct Request {
    identity: String,
    key: KeyName,
    purpose: Option<Purpose>,
    operation: KmsOperation,
    context: Option<EncryptionContext>,
}

fn model_is_ca(request: &Request) -> bool {
    request.purpose == Some(Purpose::PkiCa)
        || request.key.as_str().split('/').next() == Some("pki-ca")
}

fn model_rule_allows(rule: &KmsRule, request: &Request) -> bool {
    rule.operations.contains(&request.operation)
        && rule
            .identities
            .iter()
            .any(|p| model_matches(p, &request.identity))
        && rule
            .keys
            .iter()
            .any(|p| model_matches(p, request.key.as_str()))
        && (rule.purposes.is_empty() || request.purpose.is_some_and(|p| rule.purposes.contains(&p)))
        && (rule.context.is_empty()
            || request.context.as_ref().is_some_and(|context| {
                rule.context.iter().all(|(key, pattern)| {
                    context
                        .iter()
                        .any(|(k, v)| k == key && model_matches(pattern, v))
                })
            }))
}

fn model_grant_live(grant: &KmsGrant, now: OffsetDateTime) -> bool {
    grant.revoked_at.is_none() && grant.not_before <= now && now < grant.not_after
}

fn model_grant_allows(grant: &KmsGrant, request: &Request) -> bool {
    model_matches(&grant.identity, &request.identity)
        && grant
            .keys
            .iter()
            .any(|p| model_matches(p, request.key.as_str()))
        && grant
            .operations
            .iter()
            .any(|op| op == request.operation.as_str())
}

// ---- generators ----------------------------------------------------------------------

fn key_text() -> impl Strategy<Value = String> {
    (0..USES.len(), 0..ENVS.len(), 0..NAMES.len())
        .prop_map(|(u, e, n)| format!("{}/{}/{}", USES[u], ENVS[e], NAMES[n]))
}

/// A pattern derived from `text`: itself, with a `/`-separated part replaced by `*` or
/// `**`, cut short and ended with a wildcard, `**` alone, or random pieces.
fn pattern_of(text: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("*"),
        Just("**"),
        Just("/"),
        Just("a"),
        Just("pay"),
        Just("client:"),
        Just("prod"),
        Just("spiffe://example.com/"),
        Just("envelope-data"),
    ];
    prop_oneof![
        3 => text.prop_flat_map(|text| {
            let parts: Vec<String> = text.split('/').map(str::to_owned).collect();
            let count = parts.len();
            (Just(parts), 0..count, 0..4usize, 0..=text.len()).prop_map(
                move |(mut parts, index, how, cut)| match how {
                    0 => parts.join("/"),
                    1 => {
                        parts[index] = "*".into();
                        parts.join("/")
                    }
                    2 => {
                        parts[index] = "**".into();
                        parts.join("/")
                    }
                    _ => {
                        let joined = parts.join("/");
                        format!("{}*", &joined[..cut.min(joined.len())])
                    }
                },
            )
        }),
        1 => Just("**".to_owned()),
        1 => proptest::collection::vec(pieces, 1..5).prop_map(|p| p.concat()),
    ]
}

fn identity_text() -> impl Strategy<Value = String> {
    (0..IDENTITIES.len()).prop_map(|i| IDENTITIES[i].to_owned())
}

fn operations() -> impl Strategy<Value = Vec<KmsOperation>> {
    proptest::sample::subsequence(KmsOperation::ALL.to_vec(), 0..=4)
}

fn context_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(
        prop_oneof![Just("tenant".to_owned()), Just("table".to_owned())],
        prop_oneof![
            Just("acme".to_owned()),
            Just("ac*".to_owned()),
            Just("globex".to_owned())
        ],
        0..=2,
    )
}

fn rule() -> impl Strategy<Value = KmsRule> {
    (
        proptest::collection::vec(pattern_of(identity_text()), 1..3),
        proptest::collection::vec(pattern_of(key_text()), 1..3),
        operations(),
        proptest::sample::subsequence(PURPOSES.to_vec(), 0..=2),
        prop_oneof![3 => Just(BTreeMap::new()), 1 => context_map()],
    )
        .prop_map(
            |(identities, keys, operations, purposes, context)| KmsRule {
                identities,
                keys,
                operations,
                purposes,
                context,
            },
        )
}

/// A grant whose window starts up to 100 s either side of `now` and lasts 1–200 s
/// (some revoked), with an operation name that may be unknown.
fn grant(index: usize, now: OffsetDateTime) -> impl Strategy<Value = KmsGrant> {
    (
        pattern_of(identity_text()),
        proptest::collection::vec(pattern_of(key_text()), 1..3),
        proptest::collection::vec(
            prop_oneof![
                4 => (0..KmsOperation::ALL.len()).prop_map(|i| KmsOperation::ALL[i].as_str().to_owned()),
                1 => Just("frobnicate".to_owned()),
            ],
            1..4,
        ),
        -100i64..=100,
        1i64..=200,
        proptest::bool::weighted(0.15),
    )
        .prop_map(move |(identity, keys, operations, start, length, revoked)| {
            let not_before = now + Duration::seconds(start);
            KmsGrant {
                id: format!("{index:04x}"),
                identity,
                keys,
                operations,
                not_before,
                not_after: not_before + Duration::seconds(length),
                created_by: "admin:test".into(),
                created_at: now - Duration::seconds(300),
                revoked_at: revoked.then_some(now - Duration::seconds(1)),
            }
        })
}

fn request() -> impl Strategy<Value = Request> {
    (
        identity_text(),
        key_text(),
        proptest::option::weighted(0.9, 0..PURPOSES.len()),
        0..KmsOperation::ALL.len(),
        proptest::option::of(context_map()),
    )
        .prop_map(|(identity, key, purpose, operation, context)| Request {
            identity,
            key: KeyName::new(&key).unwrap(),
            purpose: purpose.map(|i| PURPOSES[i]),
            operation: KmsOperation::ALL[operation],
            context: context.map(|pairs| {
                EncryptionContext::from_pairs(pairs.iter().map(|(k, v)| format!("{k}={v}")))
                    .unwrap()
            }),
        })
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap()
}

fn scenario() -> impl Strategy<Value = (Vec<KmsRule>, Vec<KmsGrant>, Vec<Request>)> {
    let grants = (0usize..6).prop_flat_map(|count| {
        (0..count)
            .map(|index| grant(index, now()))
            .collect::<Vec<_>>()
    });
    (
        proptest::collection::vec(rule(), 0..4),
        grants,
        proptest::collection::vec(request(), 1..48),
    )
}

// ---- the property --------------------------------------------------------------------

proptest! {
    // Each case opens a SQLite store; 32 requests per case on average.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn decisions_match_the_reference_model((rules, grants, requests) in scenario()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // On tmpfs where there is one: every write of the store is an fsync.
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap();
        let now = now();
        let live = runtime.block_on(async {
            let store = SqliteStore::open(&dir.path().join("carimbo.db")).await.unwrap();
            for grant in &grants {
                let mut stored = grant.clone();
                stored.revoked_at = None;
                store.insert_kms_grant(&stored).await.unwrap();
                if let Some(at) = grant.revoked_at {
                    store.revoke_kms_grant(&grant.id, at).await.unwrap();
                }
            }
            let live = store.live_kms_grants(now).await.unwrap();
            store.close().await;
            live
        });
        // The store hands the policy exactly the live grants.
        let mut expected_live: Vec<&str> = grants
            .iter()
            .filter(|g| model_grant_live(g, now))
            .map(|g| g.id.as_str())
            .collect();
        expected_live.sort_unstable();
        let mut got_live: Vec<&str> = live.iter().map(|g| g.id.as_str()).collect();
        got_live.sort_unstable();
        prop_assert_eq!(&got_live, &expected_live);

        for request in &requests {
            let asked = KmsRequest {
                identity: &request.identity,
                key: &request.key,
                purpose: request.purpose,
                operation: request.operation,
                context: request.context.as_ref(),
            };
            let decision = decide(&rules, &live, &asked);
            let first_rule = if model_is_ca(request) {
                None
            } else {
                rules.iter().position(|rule| model_rule_allows(rule, request))
            };
            let grant_allows = !model_is_ca(request)
                && grants
                    .iter()
                    .any(|g| model_grant_live(g, now) && model_grant_allows(g, request));
            match &decision {
                Decision::AllowedByRule(index) => {
                    prop_assert_eq!(Some(*index), first_rule);
                }
                Decision::AllowedByGrant(id) => {
                    prop_assert_eq!(first_rule, None);
                    let grant = grants.iter().find(|g| &g.id == id).unwrap();
                    prop_assert!(model_grant_live(grant, now), "grant {} is not live", id);
                    prop_assert!(model_grant_allows(grant, request));
                    prop_assert!(!model_is_ca(request));
                }
                Decision::Denied => {
                    prop_assert_eq!(first_rule, None);
                    prop_assert!(!grant_allows, "a live grant matches but was denied");
                }
            }
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn the_matcher_agrees_with_the_model(
        pattern in pattern_of(prop_oneof![key_text(), identity_text()]),
        text in prop_oneof![key_text(), identity_text()],
    ) {
        prop_assert_eq!(
            carimbo_server::kms_policy::pattern_matches(&pattern, &text),
            model_matches(&pattern, &text)
        );
    }
}
