//! JWT/OIDC provisioners (DESIGN §4, issuance step 1): a workload proves who it is with
//! a compact JWS JWT its platform gave it — a Kubernetes service-account token, an OIDC
//! ID token — and the names it may obtain are derived from the token's claims.
//!
//! [`JwtVerifier::from_settings`] loads the provisioner's JWKS file (RFC 7517) once and
//! pins one algorithm to every key; [`JwtVerifier::verify`] checks a token against it
//! and returns the claims; [`JwtVerifier::names`] expands the provisioner's SAN templates
//! with them. The service still checks the names against the provisioner's SAN patterns
//! and the CSR against both.
//!
//! What a token must satisfy, in order (the first failure is returned):
//!
//! 1. at most [`MAX_TOKEN_BYTES`]; three base64url parts (no padding, canonical) whose
//!    header and payload are JSON objects without duplicate members;
//! 2. no header that brings its own key or extension (`jku`, `jwk`, `x5u`, `x5c`,
//!    `crit`, `b64`, `zip`, `enc`): keys come only from the configured JWKS;
//! 3. `alg` equal to the algorithm pinned to the key its `kid` names (with a single-key
//!    JWKS the `kid` may be absent), so `none`, HMAC (key confusion) and algorithm
//!    swaps are refused before any signature is checked;
//! 4. the signature, verified with aws-lc-rs (the build's one crypto provider);
//! 5. `iss` equal to the configured issuer; `aud` (a string or an array) containing the
//!    configured, Carimbo-specific audience;
//! 6. `exp` present and not past (with the leeway), `nbf` and `iat` not in the future,
//!    and `iat` not older than the configured maximum age.
//!
//! The JOSE layer is written here rather than taken from a JWT crate: it is a few
//! hundred lines, every refusal above is explicit and tested, and signature checks stay
//! on aws-lc-rs, the provider rustls and the rest of the build use.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carimbo_pki::{LeafKind, LeafProfile, SubjectAltName, check_sans};
use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Largest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Largest JWKS file accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Largest clock-skew leeway a provisioner may configure, in seconds.
pub const MAX_LEEWAY_SECONDS: u64 = 300;
/// Longest claim value substituted into a name, in bytes.
pub const MAX_CLAIM_VALUE_BYTES: usize = 255;

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (aws-lc-rs verifies up to 8192).
const MAX_RSA_BITS: usize = 8192;
/// Headers refused: each would take a key, a certificate or processing rules from the
/// token itself, or mark it as something other than a plain signed JWT.
const REFUSED_HEADERS: [&str; 8] = ["jku", "jwk", "x5u", "x5c", "crit", "b64", "zip", "enc"];
/// JWK members that only a private or symmetric key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Config of one JWT provisioner (`[[provisioners]]` with `type = "jwt"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JwtSettings {
    /// The JWKS file (RFC 7517) holding the issuer's public keys; a relative path is
    /// resolved by the caller (against the config file's directory).
    pub jwks: PathBuf,
    /// The required `iss`, compared exactly.
    pub issuer: String,
    /// The required audience: `aud` must be this string or an array containing it. Use
    /// a Carimbo-specific value, so tokens minted for other services are refused.
    pub audience: String,
    /// Algorithms allowed, e.g. `["ES256", "RS256", "EdDSA"]`; `none` and HMAC (`HS*`)
    /// are refused at load.
    pub algorithms: Vec<String>,
    /// SAN templates, e.g.
    /// `uri:spiffe://{trust-domain}/ns/{/kubernetes.io/namespace}/sa/{/kubernetes.io/serviceaccount/name}`
    /// or `dns:{/sub}.svc.example.com`: `{name}` is one of [`variables`](Self::variables),
    /// `{/a/b}` the string claim at that JSON pointer (RFC 6901).
    pub san_templates: Vec<String>,
    /// Fixed template variables, e.g. `trust-domain = "lab.example.com"`.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds (default 30, at most
    /// [`MAX_LEEWAY_SECONDS`]).
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Tokens whose `iat` is older than this many seconds are refused (default 3600;
    /// 0 = no limit).
    #[serde(default = "default_max_token_age")]
    pub max_token_age_seconds: u64,
}

fn default_leeway() -> u64 {
    30
}

fn default_max_token_age() -> u64 {
    3600
}

impl JwtSettings {
    /// Checks the settings without reading the JWKS: issuer, audience, algorithms,
    /// leeway, variables and templates (each expanded once with a placeholder claim, so
    /// a template that can never give a valid name is refused here).
    pub fn check(&self) -> Result<(), JwtError> {
        self.parse().map(|_| ())
    }

    fn parse(&self) -> Result<ParsedSettings, JwtError> {
        let config = |message: String| JwtError::Config(message);
        if self.issuer.is_empty() {
            return Err(config("issuer is empty".into()));
        }
        if self.audience.is_empty() {
            return Err(config("audience is empty".into()));
        }
        if self.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(config(format!(
                "leeway-seconds is {}; at most {MAX_LEEWAY_SECONDS}",
                self.leeway_seconds
            )));
        }
        if self.algorithms.is_empty() {
            return Err(config("algorithms is empty".into()));
        }
        let mut algorithms = BTreeSet::new();
        for name in &self.algorithms {
            algorithms.insert(Algorithm::from_config(name)?);
        }
        for (name, value) in &self.variables {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(config(format!(
                    "variable name {name:?}: letters, digits, '-' and '_' only"
                )));
            }
            check_value(value, false)
                .map_err(|reason| config(format!("variable {name:?}: {reason}")))?;
        }
        if self.san_templates.is_empty() {
            return Err(config("san-templates is empty".into()));
        }
        let templates = self
            .san_templates
            .iter()
            .map(|text| Template::parse(text, &self.variables))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ParsedSettings {
            algorithms,
            templates,
        })
    }
}

/// What [`JwtSettings::parse`] makes of the settings.
struct ParsedSettings {
    algorithms: BTreeSet<Algorithm>,
    templates: Vec<Template>,
}

/// Why a token, a JWKS or the settings were refused. Every variant has a stable code
/// ([`code`](Self::code)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The settings or the JWKS file are not usable (a start-up error).
    #[error("JWT provisioner config: {0}")]
    Config(String),
    /// The token is not a well-formed compact JWS with JSON header and claims.
    #[error("malformed JWT: {0}")]
    Malformed(String),
    /// The token is larger than [`MAX_TOKEN_BYTES`].
    #[error("the JWT is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    /// The header carries a member that is never accepted (a key, a key URL, a
    /// certificate, a critical extension).
    #[error("JWT header {0:?} is not accepted: keys come only from the configured JWKS")]
    UnsupportedHeader(String),
    /// No configured key matches the token's `kid`.
    #[error("no key for this JWT: {0}")]
    UnknownKey(String),
    /// The token's `alg` is not the algorithm pinned to its key (or is `none`, HMAC or
    /// unknown).
    #[error("JWT algorithm refused: {0}")]
    AlgorithmNotAllowed(String),
    /// The signature does not verify with the key.
    #[error("the JWT signature does not verify")]
    BadSignature,
    /// `iss` is missing or not the configured issuer.
    #[error("wrong JWT issuer: {0}")]
    WrongIssuer(String),
    /// `aud` is missing or does not contain the configured audience.
    #[error("the JWT audience does not include this service")]
    WrongAudience,
    /// `exp` is past.
    #[error("the JWT expired")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("the JWT is not valid yet (nbf or iat in the future)")]
    NotYetValid,
    /// `iat` is older than the configured maximum token age.
    #[error("the JWT was issued too long ago")]
    TooOld,
    /// A required claim is absent (`exp`, or one a template names).
    #[error("the JWT has no claim {0}")]
    MissingClaim(String),
    /// A claim is present but its value may not be used (type, characters, length).
    #[error("JWT claim {pointer}: {reason}")]
    BadClaim {
        /// The JSON pointer of the claim.
        pointer: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// An expanded template is not a name Carimbo issues (DNS syntax, SPIFFE ID rules).
    #[error("name refused: {0}")]
    BadName(String),
}

impl JwtError {
    /// The stable snake_case code of the refusal, e.g. `jwt_expired`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "jwt_config",
            Self::Malformed(_) => "jwt_malformed",
            Self::TooLarge => "jwt_too_large",
            Self::UnsupportedHeader(_) => "jwt_unsupported_header",
            Self::UnknownKey(_) => "jwt_unknown_key",
            Self::AlgorithmNotAllowed(_) => "jwt_algorithm_not_allowed",
            Self::BadSignature => "jwt_bad_signature",
            Self::WrongIssuer(_) => "jwt_wrong_issuer",
            Self::WrongAudience => "jwt_wrong_audience",
            Self::Expired => "jwt_expired",
            Self::NotYetValid => "jwt_not_yet_valid",
            Self::TooOld => "jwt_too_old",
            Self::MissingClaim(_) => "jwt_missing_claim",
            Self::BadClaim { .. } => "jwt_bad_claim",
            Self::BadName(_) => "jwt_bad_name",
        }
    }
}

/// A JWS algorithm Carimbo verifies (RFC 7518 §3, RFC 8037 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Algorithm {
    Es256,
    Es384,
    Es512,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    EdDsa,
}

/// The kind of public key a JWK holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyType {
    P256,
    P384,
    P521,
    Rsa,
    Ed25519,
}

impl Algorithm {
    const ALL: [Self; 10] = [
        Self::Es256,
        Self::Es384,
        Self::Es512,
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::EdDsa,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm named exactly `name` (JOSE names are case-sensitive).
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// An algorithm named in the settings or a JWK: `none` and HMAC are refused with
    /// their reason.
    fn from_config(name: &str) -> Result<Self, JwtError> {
        if let Some(algorithm) = Self::from_name(name) {
            return Ok(algorithm);
        }
        let reason = if name.eq_ignore_ascii_case("none") {
            "unsigned tokens are never accepted".to_string()
        } else if name.to_ascii_uppercase().starts_with("HS") {
            "HMAC needs a shared secret; only public-key algorithms are accepted".to_string()
        } else {
            let known: Vec<&str> = Self::ALL.iter().map(|a| a.name()).collect();
            format!("unknown algorithm (one of {})", known.join(", "))
        };
        Err(JwtError::Config(format!("algorithm {name:?}: {reason}")))
    }

    /// The kind of key this algorithm signs with.
    fn key_type(self) -> KeyType {
        match self {
            Self::Es256 => KeyType::P256,
            Self::Es384 => KeyType::P384,
            Self::Es512 => KeyType::P521,
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512 => {
                KeyType::Rsa
            }
            Self::EdDsa => KeyType::Ed25519,
        }
    }

    /// aws-lc-rs parameters for the RSA algorithms (modulus 2048 to 8192 bits).
    fn rsa_parameters(self) -> Option<&'static RsaParameters> {
        match self {
            Self::Rs256 => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
            Self::Rs384 => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
            Self::Rs512 => Some(&signature::RSA_PKCS1_2048_8192_SHA512),
            Self::Ps256 => Some(&signature::RSA_PSS_2048_8192_SHA256),
            Self::Ps384 => Some(&signature::RSA_PSS_2048_8192_SHA384),
            Self::Ps512 => Some(&signature::RSA_PSS_2048_8192_SHA512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One key of the JWKS, with its pinned algorithm.
struct VerificationKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: ParsedPublicKey,
}

impl VerificationKey {
    fn describe(&self) -> String {
        match &self.kid {
            Some(kid) => format!("key {:?}", shorten(kid)),
            None => "the key".to_string(),
        }
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Verifies the tokens of one JWT provisioner and maps their claims to names. Built
/// once at start-up by [`from_settings`](Self::from_settings); immutable (to pick up a
/// rotated JWKS, build a new one).
#[derive(Debug)]
pub struct JwtVerifier {
    keys: Vec<VerificationKey>,
    issuer: String,
    audience: String,
    leeway_seconds: i64,
    max_token_age_seconds: i64,
    templates: Vec<Template>,
}

impl JwtVerifier {
    /// Checks `settings` and loads the JWKS at `jwks_path` (the caller resolves
    /// [`JwtSettings::jwks`]). Each key gets one pinned algorithm: its `alg` member,
    /// which must be in `algorithms` and fit the key; or, without `alg`, the single
    /// algorithm of `algorithms` its type allows (EC P-256 → ES256, P-384 → ES384,
    /// P-521 → ES512, OKP Ed25519 → EdDSA, RSA → whichever one RS*/PS* is allowed),
    /// refused when there is none or more than one. Refused too: symmetric (`oct`) and
    /// private keys, RSA moduli under 2048 bits, keys not for signing (`use`,
    /// `key_ops`), duplicate `kid`s, and several keys of which one has no `kid`.
    pub fn from_settings(settings: &JwtSettings, jwks_path: &Path) -> Result<Self, JwtError> {
        let parsed = settings.parse()?;
        let bytes = read_bounded(jwks_path)?;
        let keys = load_jwks(&bytes, &parsed.algorithms)
            .map_err(|e| JwtError::Config(format!("{}: {e}", jwks_path.display())))?;
        Ok(Self {
            keys,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway_seconds: i64::try_from(settings.leeway_seconds).unwrap_or(i64::MAX),
            max_token_age_seconds: i64::try_from(settings.max_token_age_seconds)
                .unwrap_or(i64::MAX),
            templates: parsed.templates,
        })
    }

    /// Verifies a compact JWS JWT at `now` (see the module documentation for every
    /// check, in order) and returns its claims, a JSON object.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Value, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header_part), Some(payload_part), Some(signature_part), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed(
                "a JWT is three base64url parts separated by dots (JWS compact serialisation)"
                    .into(),
            ));
        };
        let header = parse_object(&decode_part(header_part, "header")?)
            .map_err(|e| JwtError::Malformed(format!("header: {e}")))?;
        if let Some(name) = REFUSED_HEADERS
            .iter()
            .find(|name| header.contains_key(**name))
        {
            return Err(JwtError::UnsupportedHeader((*name).to_string()));
        }
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg,
            Some(_) => return Err(JwtError::Malformed("header alg is not a string".into())),
            None => return Err(JwtError::Malformed("header has no alg".into())),
        };
        let algorithm = Algorithm::from_name(alg).ok_or_else(|| {
            JwtError::AlgorithmNotAllowed(format!("{:?} is not accepted", shorten(alg)))
        })?;
        let key = self.select_key(header.get("kid"))?;
        if algorithm != key.algorithm {
            return Err(JwtError::AlgorithmNotAllowed(format!(
                "the token says {algorithm} but {} is pinned to {}",
                key.describe(),
                key.algorithm
            )));
        }
        let signature = decode_part(signature_part, "signature")?;
        // The signing input is the first two parts as sent, dot included (RFC 7515 §5.2).
        let signing_input = &token[..header_part.len() + 1 + payload_part.len()];
        key.key
            .verify_sig(signing_input.as_bytes(), &signature)
            .map_err(|_| JwtError::BadSignature)?;
        let claims = parse_object(&decode_part(payload_part, "payload")?)
            .map_err(|e| JwtError::Malformed(format!("claims: {e}")))?;
        self.check_claims(&claims, now)?;
        Ok(Value::Object(claims))
    }

    /// Expands the SAN templates against verified `claims` and the fixed variables.
    /// Every claim value substituted must be a non-empty ASCII string of at most
    /// [`MAX_CLAIM_VALUE_BYTES`] bytes without `/`, `..`, whitespace or control
    /// characters (and, in a `dns:` template, a valid sequence of DNS labels); every
    /// name must then be one Carimbo issues: a DNS name in preferred syntax (no
    /// wildcard), a SPIFFE ID, or an IP address.
    pub fn names(&self, claims: &Value) -> Result<Vec<SubjectAltName>, JwtError> {
        self.templates
            .iter()
            .map(|template| template.expand(claims))
            .collect()
    }

    /// The `iss` this verifier accepts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The identity recorded for the caller: `jwt:<iss>#<sub>` (control characters
    /// escaped, each part at most 256 characters).
    pub fn identity(&self, claims: &Value) -> String {
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        format!("jwt:{}#{}", printable(&self.issuer), printable(subject))
    }

    /// The key a token's `kid` names; without `kid`, the only key of a one-key JWKS.
    fn select_key(&self, kid: Option<&Value>) -> Result<&VerificationKey, JwtError> {
        match kid {
            Some(Value::String(kid)) => self
                .keys
                .iter()
                .find(|key| key.kid.as_deref() == Some(kid.as_str()))
                .ok_or_else(|| JwtError::UnknownKey(format!("no key with kid {:?}", shorten(kid)))),
            Some(_) => Err(JwtError::Malformed("header kid is not a string".into())),
            None => match self.keys.as_slice() {
                [only] => Ok(only),
                keys => Err(JwtError::UnknownKey(format!(
                    "the token has no kid and the JWKS has {} keys",
                    keys.len()
                ))),
            },
        }
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<(), JwtError> {
        match claims.get("iss") {
            Some(Value::String(issuer)) if *issuer == self.issuer => {}
            Some(Value::String(issuer)) => {
                return Err(JwtError::WrongIssuer(format!(
                    "{:?} is not the configured issuer",
                    shorten(issuer)
                )));
            }
            Some(_) => return Err(JwtError::WrongIssuer("iss is not a string".into())),
            None => return Err(JwtError::WrongIssuer("the token has no iss".into())),
        }
        let audience_matches = match claims.get("aud") {
            Some(Value::String(audience)) => *audience == self.audience,
            Some(Value::Array(audiences)) => audiences
                .iter()
                .any(|a| a.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        if !audience_matches {
            return Err(JwtError::WrongAudience);
        }
        let now = now.unix_timestamp();
        let leeway = self.leeway_seconds;
        let expires =
            numeric_date(claims, "exp")?.ok_or_else(|| JwtError::MissingClaim("/exp".into()))?;
        if expires <= now.saturating_sub(leeway) {
            return Err(JwtError::Expired);
        }
        if let Some(not_before) = numeric_date(claims, "nbf")?
            && not_before > now.saturating_add(leeway)
        {
            return Err(JwtError::NotYetValid);
        }
        if let Some(issued) = numeric_date(claims, "iat")? {
            if issued > now.saturating_add(leeway) {
                return Err(JwtError::NotYetValid);
            }
            if self.max_token_age_seconds > 0
                && issued
                    < now
                        .saturating_sub(self.max_token_age_seconds)
                        .saturating_sub(leeway)
            {
                return Err(JwtError::TooOld);
            }
        }
        Ok(())
    }
}

/// Reads a JWKS file, refusing one larger than [`MAX_JWKS_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, JwtError> {
    use std::io::Read;
    let error = |e: std::io::Error| JwtError::Config(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(error)?;
    let mut bytes = Vec::new();
    file.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(error)?;
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(JwtError::Config(format!(
            "{}: larger than {MAX_JWKS_BYTES} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Parses a JWKS and pins an algorithm to each key (see [`JwtVerifier::from_settings`]).
fn load_jwks(bytes: &[u8], allowed: &BTreeSet<Algorithm>) -> Result<Vec<VerificationKey>, String> {
    const SHAPE: &str = "a JWKS is a JSON object with a \"keys\" array";
    let document = parse_object(bytes).map_err(|e| format!("{e} ({SHAPE})"))?;
    let Some(Value::Array(entries)) = document.get("keys") else {
        return Err(SHAPE.into());
    };
    if entries.is_empty() {
        return Err("the JWKS has no keys".into());
    }
    let mut keys: Vec<VerificationKey> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let Value::Object(jwk) = entry else {
            return Err(format!("keys[{index}] is not a JSON object"));
        };
        let name = match jwk.get("kid").and_then(Value::as_str) {
            Some(kid) => format!("keys[{index}] (kid {:?})", shorten(kid)),
            None => format!("keys[{index}]"),
        };
        let key = load_jwk(jwk, allowed).map_err(|e| format!("{name}: {e}"))?;
        if let Some(kid) = &key.kid
            && keys.iter().any(|k| k.kid.as_ref() == Some(kid))
        {
            return Err(format!("{name}: duplicate kid"));
        }
        keys.push(key);
    }
    if keys.len() > 1 && keys.iter().any(|k| k.kid.is_none()) {
        return Err("with several keys, every key needs a kid".into());
    }
    Ok(keys)
}

/// One JWK: its public key parsed by aws-lc-rs and its pinned algorithm.
fn load_jwk(
    jwk: &Map<String, Value>,
    allowed: &BTreeSet<Algorithm>,
) -> Result<VerificationKey, String> {
    let string = |member: &str| -> Result<Option<&str>, String> {
        match jwk.get(member) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(format!("{member:?} is not a string")),
        }
    };
    let kty = string("kty")?.ok_or("no \"kty\"")?;
    if kty == "oct" {
        return Err(
            "symmetric (oct) keys are refused: only public-key algorithms are accepted".into(),
        );
    }
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(format!(
            "holds private key material ({member:?}): publish only the public key"
        ));
    }
    if let Some(usage) = string("use")?
        && usage != "sig"
    {
        return Err(format!("\"use\" is {usage:?}, not \"sig\""));
    }
    if let Some(operations) = jwk.get("key_ops") {
        let verifies = operations
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err("\"key_ops\" does not include \"verify\"".into());
        }
    }
    let kid = string("kid")?.map(str::to_owned);
    let key_type = match (kty, string("crv")?) {
        ("EC", Some("P-256")) => KeyType::P256,
        ("EC", Some("P-384")) => KeyType::P384,
        ("EC", Some("P-521")) => KeyType::P521,
        ("EC", curve) => {
            return Err(format!(
                "EC curve {curve:?} is not supported (P-256, P-384, P-521)"
            ));
        }
        ("RSA", _) => KeyType::Rsa,
        ("OKP", Some("Ed25519")) => KeyType::Ed25519,
        ("OKP", curve) => return Err(format!("OKP curve {curve:?} is not supported (Ed25519)")),
        (other, _) => {
            return Err(format!(
                "key type {other:?} is not supported (EC, RSA, OKP)"
            ));
        }
    };
    let algorithm = match string("alg")? {
        Some(name) => {
            let algorithm = Algorithm::from_config(name).map_err(|e| match e {
                JwtError::Config(message) => message,
                other => other.to_string(),
            })?;
            if algorithm.key_type() != key_type {
                return Err(format!("\"alg\" {algorithm} does not fit a {kty} key"));
            }
            if !allowed.contains(&algorithm) {
                return Err(format!(
                    "\"alg\" {algorithm} is not in the provisioner's algorithms"
                ));
            }
            algorithm
        }
        None => {
            let fitting: Vec<Algorithm> = allowed
                .iter()
                .copied()
                .filter(|a| a.key_type() == key_type)
                .collect();
            match fitting.as_slice() {
                [only] => *only,
                [] => {
                    return Err(format!(
                        "no \"alg\", and the provisioner's algorithms allow none for a {kty} key"
                    ));
                }
                several => {
                    let names: Vec<&str> = several.iter().map(|a| a.name()).collect();
                    return Err(format!(
                        "no \"alg\", and the provisioner's algorithms allow several for a {kty} key ({}): set \"alg\" in the JWK",
                        names.join(", ")
                    ));
                }
            }
        }
    };
    let member = |name: &str| -> Result<Vec<u8>, String> {
        let text = string(name)?.ok_or_else(|| format!("no {name:?}"))?;
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| format!("{name:?} is not base64url without padding"))
    };
    let rejected = |e: aws_lc_rs::error::KeyRejected| format!("the public key is not valid: {e}");
    let key = match key_type {
        KeyType::P256 | KeyType::P384 | KeyType::P521 => {
            let (size, verification): (usize, &'static signature::EcdsaVerificationAlgorithm) =
                match key_type {
                    KeyType::P256 => (32, &signature::ECDSA_P256_SHA256_FIXED),
                    KeyType::P384 => (48, &signature::ECDSA_P384_SHA384_FIXED),
                    _ => (66, &signature::ECDSA_P521_SHA512_FIXED),
                };
            let (x, y) = (member("x")?, member("y")?);
            if x.len() != size || y.len() != size {
                return Err(format!("\"x\" and \"y\" must be {size} bytes each"));
            }
            // The uncompressed point; aws-lc-rs checks it is on the curve.
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            ParsedPublicKey::new(verification, point).map_err(rejected)?
        }
        KeyType::Ed25519 => {
            let x = member("x")?;
            if x.len() != 32 {
                return Err("\"x\" must be 32 bytes".into());
            }
            ParsedPublicKey::new(&signature::ED25519, x).map_err(rejected)?
        }
        KeyType::Rsa => {
            let (n, e) = (member("n")?, member("e")?);
            let n = strip_leading_zeros(&n);
            let e = strip_leading_zeros(&e);
            let bits = bit_length(n);
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "RSA modulus of {bits} bits; at least {MIN_RSA_BITS}"
                ));
            }
            if bits > MAX_RSA_BITS {
                return Err(format!(
                    "RSA modulus of {bits} bits; at most {MAX_RSA_BITS}"
                ));
            }
            if e.is_empty() || e == [1] || e.len() > 4 || e.last().is_some_and(|b| b & 1 == 0) {
                return Err(
                    "the RSA public exponent is not an odd number of at most 32 bits".into(),
                );
            }
            let parameters = algorithm
                .rsa_parameters()
                .ok_or("an RSA key needs an RSA algorithm")?;
            RsaPublicKeyComponents { n, e }
                .to_parsed_public_key(parameters)
                .map_err(rejected)?
        }
    };
    Ok(VerificationKey {
        kid,
        algorithm,
        key,
    })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Bits of a big-endian unsigned integer without leading zero bytes.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(first) => (bytes.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

/// Decodes one part of a compact JWS: base64url, no padding, canonical.
fn decode_part(part: &str, what: &str) -> Result<Vec<u8>, JwtError> {
    if part.is_empty() {
        return Err(JwtError::Malformed(format!("empty {what}")));
    }
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed(format!("{what} is not base64url without padding")))
}

/// A NumericDate claim (RFC 7519 §2), in whole seconds (fractions rounded down).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(number)) => {
            if let Some(seconds) = number.as_i64() {
                Ok(Some(seconds))
            } else if let Some(seconds) = number.as_f64() {
                // `as` saturates for floats out of range: huge dates stay huge.
                Ok(Some(seconds.floor() as i64))
            } else {
                Err(JwtError::Malformed(format!("{name} is not a NumericDate")))
            }
        }
        Some(_) => Err(JwtError::Malformed(format!("{name} is not a NumericDate"))),
    }
}

/// Parses a JSON object, refusing duplicate members at any depth (RFC 7515 §5.2 lets a
/// parser keep the last one; two parsers keeping different ones is an attack).
fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<StrictJson>(bytes) {
        Ok(StrictJson(Value::Object(object))) => Ok(object),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

/// A JSON value read without accepting duplicate object members.
struct StrictJson(Value);

impl<'de> Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictJson)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictJson(item)) = sequence.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate member {:?}",
                    shorten(&key)
                )));
            }
            let StrictJson(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The kind of name a template makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NameKind {
    Dns,
    Uri,
    Ip,
}

impl NameKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Dns => "dns:",
            Self::Uri => "uri:",
            Self::Ip => "ip:",
        }
    }
}

/// A piece of a template.
#[derive(Clone, Debug)]
enum Piece {
    /// Text copied as is.
    Literal(String),
    /// The string claim at this JSON pointer.
    Claim(String),
}

/// A SAN template, parsed at load with its variables already substituted.
#[derive(Clone, Debug)]
struct Template {
    text: String,
    kind: NameKind,
    pieces: Vec<Piece>,
}

impl Template {
    fn parse(text: &str, variables: &BTreeMap<String, String>) -> Result<Self, JwtError> {
        let error = |reason: String| JwtError::Config(format!("SAN template {text:?}: {reason}"));
        let (kind, body) = if let Some(body) = text.strip_prefix("dns:") {
            (NameKind::Dns, body)
        } else if let Some(body) = text.strip_prefix("uri:") {
            (NameKind::Uri, body)
        } else if let Some(body) = text.strip_prefix("ip:") {
            (NameKind::Ip, body)
        } else {
            return Err(error("must start with dns:, uri: or ip:".into()));
        };
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = body;
        while let Some(position) = rest.find(['{', '}']) {
            let (before, after) = rest.split_at(position);
            literal.push_str(before);
            let Some(inner) = after.strip_prefix('{') else {
                return Err(error("'}' without '{'".into()));
            };
            let end = inner
                .find(['{', '}'])
                .filter(|end| inner[*end..].starts_with('}'))
                .ok_or_else(|| error("'{' without its '}'".into()))?;
            let placeholder = &inner[..end];
            rest = &inner[end + 1..];
            if placeholder.starts_with('/') {
                check_pointer(placeholder)
                    .map_err(|reason| error(format!("{{{placeholder}}}: {reason}")))?;
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Claim(placeholder.to_owned()));
            } else {
                let value = variables.get(placeholder).ok_or_else(|| {
                    error(format!(
                        "{{{placeholder}}} is neither a variable nor a JSON pointer (/…)"
                    ))
                })?;
                literal.push_str(value);
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        let template = Self {
            text: text.to_owned(),
            kind,
            pieces,
        };
        // A template that cannot give a valid name even with a plain claim value is a
        // config mistake (an upper-case trust domain, an http: URI, a stray character).
        // IP templates are tried only when they have no claim.
        let has_claim = template.pieces.iter().any(|p| matches!(p, Piece::Claim(_)));
        if kind != NameKind::Ip || !has_claim {
            let sample = template.render(|_| Ok("x".to_string()))?;
            parse_name(&sample).map_err(|reason| {
                error(format!(
                    "with every claim \"x\" it gives {sample:?}: {reason}"
                ))
            })?;
        }
        Ok(template)
    }

    /// The template's text with each claim replaced by `claim(pointer)`.
    fn render(
        &self,
        mut claim: impl FnMut(&str) -> Result<String, JwtError>,
    ) -> Result<String, JwtError> {
        let mut text = String::from(self.kind.prefix());
        for piece in &self.pieces {
            match piece {
                Piece::Literal(literal) => text.push_str(literal),
                Piece::Claim(pointer) => text.push_str(&claim(pointer)?),
            }
        }
        Ok(text)
    }

    fn expand(&self, claims: &Value) -> Result<SubjectAltName, JwtError> {
        let text = self.render(|pointer| {
            let bad = |reason: String| JwtError::BadClaim {
                pointer: pointer.to_owned(),
                reason,
            };
            match claims.pointer(pointer) {
                None => Err(JwtError::MissingClaim(pointer.to_owned())),
                Some(Value::String(value)) => {
                    check_value(value, self.kind == NameKind::Dns).map_err(bad)?;
                    Ok(value.clone())
                }
                Some(other) => Err(bad(format!("{}, not a string", json_type(other)))),
            }
        })?;
        parse_name(&text).map_err(|reason| {
            JwtError::BadName(format!(
                "template {:?} gives {:?}: {reason}",
                self.text,
                shorten(&text)
            ))
        })
    }
}

/// Checks a JSON pointer (RFC 6901 §3): `~` only in `~0` and `~1`.
fn check_pointer(pointer: &str) -> Result<(), String> {
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err("'~' must be followed by 0 or 1 in a JSON pointer".into());
        }
    }
    Ok(())
}

/// Checks a value substituted into a template: non-empty ASCII of at most
/// [`MAX_CLAIM_VALUE_BYTES`] bytes; no `/`, no `..`, not `.`; no whitespace or control
/// character; in a DNS name, dot-separated labels of letters, digits and inner hyphens
/// of at most 63 bytes each.
fn check_value(value: &str, dns: bool) -> Result<(), String> {
    if value.is_empty() {
        return Err("empty value".into());
    }
    if value.len() > MAX_CLAIM_VALUE_BYTES {
        return Err(format!(
            "{} bytes long; at most {MAX_CLAIM_VALUE_BYTES}",
            value.len()
        ));
    }
    if !value.is_ascii() {
        return Err("not ASCII".into());
    }
    if value
        .chars()
        .any(|c| c.is_ascii_control() || c.is_ascii_whitespace())
    {
        return Err("contains whitespace or a control character".into());
    }
    if value.contains('/') {
        return Err("contains '/'".into());
    }
    if value.contains("..") || value == "." {
        return Err("contains '..' or is '.'".into());
    }
    if dns {
        for label in value.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err("DNS labels are 1 to 63 bytes".into());
            }
            if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(format!(
                    "{:?} is not a DNS label (letters, digits and hyphens only)",
                    shorten(label)
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!(
                    "DNS label {:?} starts or ends with a hyphen",
                    shorten(label)
                ));
            }
        }
    }
    Ok(())
}

/// Parses an expanded template and checks it is a name Carimbo issues: a SPIFFE ID
/// (workload rules), a DNS name without wildcard or an IP address (server rules).
fn parse_name(text: &str) -> Result<SubjectAltName, String> {
    let name: SubjectAltName = text.parse().map_err(|e| format!("{e}"))?;
    let kind = match name {
        SubjectAltName::Uri(_) => LeafKind::Workload,
        SubjectAltName::Dns(_) | SubjectAltName::Ip(_) => LeafKind::Server,
    };
    check_sans(&LeafProfile::defaults(kind), std::slice::from_ref(&name))
        .map_err(|e| e.to_string())?;
    Ok(name)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most 64 characters of untrusted text, for error messages.
fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// At most 256 characters, control characters escaped, for the recorded identity.
fn printable(text: &str) -> String {
    let mut printable = String::new();
    for c in text.chars().take(256) {
        if c.is_control() {
            printable.extend(c.escape_default());
        } else {
            printable.push(c);
        }
    }
    printable
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
        Ed25519KeyPair, KeyPair, RsaKeyPair,
    };
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://kubernetes.default.svc";
    const SPIFFE_TEMPLATE: &str = "uri:spiffe://{trust-domain}/ns/{/kubernetes.io/namespace}/sa/{/kubernetes.io/serviceaccount/name}";
    /// 2026-01-01T00:00:00Z, when the tokens of `tests/data/jwt` were issued.
    const ISSUED: i64 = 1_767_225_600;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(ISSUED + 60).unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// One RSA-2048 key for every test (generation is the slow part).
    fn rsa_key() -> &'static RsaKeyPair {
        static KEY: OnceLock<RsaKeyPair> = OnceLock::new();
        KEY.get_or_init(|| RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
    }

    enum TestKey {
        P256(EcdsaKeyPair),
        P384(EcdsaKeyPair),
        Rsa,
        Ed25519(Ed25519KeyPair),
    }

    impl TestKey {
        fn p256() -> Self {
            Self::P256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
        }

        fn p384() -> Self {
            Self::P384(EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap())
        }

        fn ed25519() -> Self {
            Self::Ed25519(Ed25519KeyPair::generate().unwrap())
        }

        /// The public JWK, with `kid` and `alg` if given.
        fn jwk(&self, kid: Option<&str>, alg: Option<&str>) -> Value {
            let mut jwk = match self {
                Self::P256(key) | Self::P384(key) => {
                    let point = key.public_key().as_ref();
                    let size = (point.len() - 1) / 2;
                    let curve = if size == 32 { "P-256" } else { "P-384" };
                    json!({"kty": "EC", "crv": curve, "x": b64(&point[1..=size]), "y": b64(&point[1 + size..])})
                }
                Self::Rsa => {
                    let public = rsa_key().public_key();
                    json!({
                        "kty": "RSA",
                        "n": b64(public.modulus().big_endian_without_leading_zero()),
                        "e": b64(public.exponent().big_endian_without_leading_zero()),
                    })
                }
                Self::Ed25519(key) => {
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key().as_ref())})
                }
            };
            if let Some(kid) = kid {
                jwk["kid"] = json!(kid);
            }
            if let Some(alg) = alg {
                jwk["alg"] = json!(alg);
            }
            jwk
        }

        fn sign(&self, alg: &str, message: &[u8]) -> Vec<u8> {
            let rng = SystemRandom::new();
            match self {
                Self::P256(key) | Self::P384(key) => {
                    key.sign(&rng, message).unwrap().as_ref().to_vec()
                }
                Self::Ed25519(key) => key.sign(message).as_ref().to_vec(),
                Self::Rsa => {
                    let key = rsa_key();
                    let padding: &'static dyn signature::RsaEncoding = match alg {
                        "RS256" => &signature::RSA_PKCS1_SHA256,
                        "RS384" => &signature::RSA_PKCS1_SHA384,
                        "RS512" => &signature::RSA_PKCS1_SHA512,
                        "PS256" => &signature::RSA_PSS_SHA256,
                        "PS384" => &signature::RSA_PSS_SHA384,
                        _ => &signature::RSA_PSS_SHA512,
                    };
                    let mut signature = vec![0; key.public_modulus_len()];
                    key.sign(padding, &rng, message, &mut signature).unwrap();
                    signature
                }
            }
        }

        /// A compact JWS of `claims` with `header`, signed with this key as `alg`.
        fn token(&self, header: &Value, claims: &Value) -> String {
            let alg = header["alg"].as_str().unwrap_or("ES256").to_owned();
            let input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let signature = self.sign(&alg, input.as_bytes());
            format!("{input}.{}", b64(&signature))
        }
    }

    /// Kubernetes-like service-account claims, issued a minute before [`now`].
    fn claims() -> Value {
        json!({
            "iss": ISSUER,
            "aud": ["carimbo"],
            "sub": "system:serviceaccount:ml:trainer",
            "kubernetes.io": {"namespace": "ml", "serviceaccount": {"name": "trainer"}},
            "iat": ISSUED,
            "nbf": ISSUED,
            "exp": ISSUED + 3600,
        })
    }

    fn settings(algorithms: &[&str]) -> JwtSettings {
        JwtSettings {
            jwks: PathBuf::from("jwks.json"),
            issuer: ISSUER.into(),
            audience: "carimbo".into(),
            algorithms: algorithms.iter().map(|a| a.to_string()).collect(),
            san_templates: vec![SPIFFE_TEMPLATE.into()],
            variables: BTreeMap::from([("trust-domain".into(), "lab.example.com".into())]),
            leeway_seconds: 30,
            max_token_age_seconds: 3600,
        }
    }

    /// Loads `jwks` (written to a temporary file) with `settings`.
    fn load(settings: &JwtSettings, jwks: &Value) -> Result<JwtVerifier, JwtError> {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("jwks.json");
        std::fs::write(&path, jwks.to_string()).unwrap();
        JwtVerifier::from_settings(settings, &path)
    }

    /// A verifier trusting `key` as `kid` "k1" pinned to `alg`.
    fn verifier(key: &TestKey, alg: &str) -> JwtVerifier {
        load(
            &settings(&[alg]),
            &json!({"keys": [key.jwk(Some("k1"), Some(alg))]}),
        )
        .unwrap()
    }

    fn header(alg: &str) -> Value {
        json!({"alg": alg, "kid": "k1", "typ": "JWT"})
    }

    fn code<T: fmt::Debug>(result: Result<T, JwtError>) -> &'static str {
        match result {
            Ok(value) => panic!("expected a refusal, got {value:?}"),
            Err(error) => {
                // Every message names its problem; none is empty.
                assert!(!error.to_string().is_empty());
                error.code()
            }
        }
    }

    fn spiffe(claims: &Value, verifier: &JwtVerifier) -> Vec<String> {
        verifier
            .names(claims)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn good_tokens_for_every_key_type() {
        let cases = [
            (TestKey::p256(), "ES256"),
            (TestKey::p384(), "ES384"),
            (TestKey::Rsa, "RS256"),
            (TestKey::Rsa, "RS512"),
            (TestKey::Rsa, "PS256"),
            (TestKey::ed25519(), "EdDSA"),
        ];
        for (key, alg) in cases {
            let verifier = verifier(&key, alg);
            let token = key.token(&header(alg), &claims());
            let verified = verifier
                .verify(&token, now())
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(verified, claims(), "{alg}");
            assert_eq!(
                spiffe(&verified, &verifier),
                ["uri:spiffe://lab.example.com/ns/ml/sa/trainer"],
                "{alg}"
            );
            assert_eq!(
                verifier.identity(&verified),
                "jwt:https://kubernetes.default.svc#system:serviceaccount:ml:trainer"
            );
        }
    }

    #[test]
    fn kubernetes_token_maps_to_a_spiffe_id_and_dns_names() {
        let key = TestKey::p256();
        let mut settings = settings(&["ES256"]);
        settings.san_templates.push(
            "dns:{/kubernetes.io/serviceaccount/name}.{/kubernetes.io/namespace}.svc.cluster.local"
                .into(),
        );
        let verifier = load(&settings, &json!({"keys": [key.jwk(Some("k1"), None)]})).unwrap();
        let claims = verifier
            .verify(&key.token(&header("ES256"), &claims()), now())
            .unwrap();
        let names = verifier.names(&claims).unwrap();
        assert_eq!(
            names,
            [
                SubjectAltName::Uri("spiffe://lab.example.com/ns/ml/sa/trainer".into()),
                SubjectAltName::Dns("trainer.ml.svc.cluster.local".into()),
            ]
        );
        // A single-key JWKS also serves a token without kid; aud may be a plain string.
        let mut plain = claims.clone();
        plain["aud"] = json!("carimbo");
        let token = key.token(&json!({"alg": "ES256"}), &plain);
        assert!(verifier.verify(&token, now()).is_ok());
    }

    #[test]
    fn tokens_signed_by_openssl_verify() {
        // tests/data/jwt: a cluster-like JWKS (RS256, ES256 and Ed25519 keys, kid =
        // SHA-256 of the SPKI as Kubernetes does) and a token signed by each key with
        // the openssl command-line tool; see make-jwt-data.py there.
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jwt");
        let settings = settings(&["RS256", "ES256", "EdDSA"]);
        let verifier =
            JwtVerifier::from_settings(&settings, &data.join("cluster-jwks.json")).unwrap();
        for name in ["rs256", "es256", "eddsa"] {
            let token = std::fs::read_to_string(data.join(format!("cluster-{name}.jwt"))).unwrap();
            let claims = verifier
                .verify(token.trim(), now())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                spiffe(&claims, &verifier),
                ["uri:spiffe://lab.example.com/ns/ml/sa/trainer"]
            );
            // The same token an hour and a half later has expired.
            let later = now() + time::Duration::minutes(90);
            assert_eq!(code(verifier.verify(token.trim(), later)), "jwt_expired");
        }
        // A real RSA-1024 key is refused at load.
        let error =
            JwtVerifier::from_settings(&settings, &data.join("rsa1024-jwks.json")).unwrap_err();
        assert_eq!(error.code(), "jwt_config");
        assert!(error.to_string().contains("1024 bits"), "{error}");
    }

    #[test]
    fn audience_and_issuer_are_required() {
        let key = TestKey::p256();
        let verifier = verifier(&key, "ES256");
        let with = |change: &dyn Fn(&mut Value)| {
            let mut claims = claims();
            change(&mut claims);
            verifier.verify(&key.token(&header("ES256"), &claims), now())
        };
        assert_eq!(
            code(with(&|c| c["aud"] = json!(["other"]))),
            "jwt_wrong_audience"
        );
        assert_eq!(
            code(with(&|c| c["aud"] = json!("other"))),
            "jwt_wrong_audience"
        );
        assert_eq!(
            code(with(&|c| c["aud"] = json!(["Carimbo"]))),
            "jwt_wrong_audience"
        );
        assert_eq!(code(with(&|c| c["aud"] = json!(42))), "jwt_wrong_audience");
        assert_eq!(
            code(with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            })),
            "jwt_wrong_audience"
        );
        assert!(with(&|c| c["aud"] = json!(["vault", "carimbo"])).is_ok());
        assert_eq!(
            code(with(&|c| c["iss"] = json!("https://evil.example.com"))),
            "jwt_wrong_issuer"
        );
        assert_eq!(
            code(with(
                &|c| c["iss"] = json!("https://kubernetes.default.svc/")
            )),
            "jwt_wrong_issuer"
        );
        assert_eq!(
            code(with(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            })),
            "jwt_wrong_issuer"
        );
    }

    #[test]
    fn signatures_are_checked() {
        let key = TestKey::p256();
        let verifier = verifier(&key, "ES256");
        let token = key.token(&header("ES256"), &claims());
        // Tampered payload: the namespace changed after signing.
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims();
        forged["kubernetes.io"]["namespace"] = json!("kube-system");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64(forged.to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(code(verifier.verify(&tampered, now())), "jwt_bad_signature");
        // Signed by another key under the same kid.
        let other = TestKey::p256().token(&header("ES256"), &claims());
        assert_eq!(code(verifier.verify(&other, now())), "jwt_bad_signature");
        // A truncated signature.
        let short = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40]);
        assert_eq!(code(verifier.verify(&short, now())), "jwt_bad_signature");
    }

    #[test]
    fn the_algorithm_is_pinned_per_key() {
        let rsa = verifier(&TestKey::Rsa, "RS256");
        // Same RSA key, another padding: refused before the signature is checked.
        let pss = TestKey::Rsa.token(&header("PS256"), &claims());
        assert_eq!(code(rsa.verify(&pss, now())), "jwt_algorithm_not_allowed");
        // alg none, with and without a signature.
        let none_header = b64(json!({"alg": "none", "kid": "k1"}).to_string().as_bytes());
        let payload = b64(claims().to_string().as_bytes());
        for token in [
            format!("{none_header}.{payload}."),
            format!("{none_header}.{payload}.AAAA"),
        ] {
            assert_eq!(code(rsa.verify(&token, now())), "jwt_algorithm_not_allowed");
        }
        // Key confusion: HS256 with the RSA public key (as JWK JSON, as modulus bytes)
        // for the HMAC secret.
        let input = format!(
            "{}.{payload}",
            b64(json!({"alg": "HS256", "kid": "k1"}).to_string().as_bytes())
        );
        let public = TestKey::Rsa.jwk(Some("k1"), Some("RS256")).to_string();
        let modulus = rsa_key()
            .public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec();
        for secret in [public.as_bytes().to_vec(), modulus] {
            let mac = aws_lc_rs::hmac::sign(
                &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret),
                input.as_bytes(),
            );
            let token = format!("{input}.{}", b64(mac.as_ref()));
            assert_eq!(code(rsa.verify(&token, now())), "jwt_algorithm_not_allowed");
        }
        // An EC token presented under the RSA key's kid.
        let ec = TestKey::p256().token(&header("ES256"), &claims());
        assert_eq!(code(rsa.verify(&ec, now())), "jwt_algorithm_not_allowed");
        // Algorithm names are case-sensitive.
        let lower = TestKey::Rsa.token(&json!({"alg": "rs256", "kid": "k1"}), &claims());
        assert_eq!(code(rsa.verify(&lower, now())), "jwt_algorithm_not_allowed");
    }

    #[test]
    fn keys_are_chosen_by_kid() {
        let (first, second) = (TestKey::p256(), TestKey::ed25519());
        let verifier = load(
            &settings(&["ES256", "EdDSA"]),
            &json!({"keys": [first.jwk(Some("a"), None), second.jwk(Some("b"), None)]}),
        )
        .unwrap();
        let token = second.token(&json!({"alg": "EdDSA", "kid": "b"}), &claims());
        assert!(verifier.verify(&token, now()).is_ok());
        let unknown = second.token(&json!({"alg": "EdDSA", "kid": "c"}), &claims());
        assert_eq!(code(verifier.verify(&unknown, now())), "jwt_unknown_key");
        // Without kid, a JWKS of several keys cannot say which one.
        let no_kid = second.token(&json!({"alg": "EdDSA"}), &claims());
        assert_eq!(code(verifier.verify(&no_kid, now())), "jwt_unknown_key");
        let numeric_kid = second.token(&json!({"alg": "EdDSA", "kid": 7}), &claims());
        assert_eq!(code(verifier.verify(&numeric_kid, now())), "jwt_malformed");
    }

    #[test]
    fn validity_times_are_checked_with_leeway() {
        let key = TestKey::ed25519();
        let verifier = verifier(&key, "EdDSA");
        let at = |change: &dyn Fn(&mut Value), seconds_after_issue: i64| {
            let mut claims = claims();
            change(&mut claims);
            let now = OffsetDateTime::from_unix_timestamp(ISSUED + seconds_after_issue).unwrap();
            verifier.verify(&key.token(&header("EdDSA"), &claims), now)
        };
        let nothing = |_: &mut Value| {};
        // exp = issue + 3600; leeway 30 s.
        assert!(at(&nothing, 3600 + 29).is_ok());
        assert_eq!(code(at(&nothing, 3600 + 30)), "jwt_expired");
        assert_eq!(code(at(&nothing, 100_000)), "jwt_expired");
        assert_eq!(
            code(at(
                &|c| {
                    c.as_object_mut().unwrap().remove("exp");
                },
                60
            )),
            "jwt_missing_claim"
        );
        assert_eq!(code(at(&|c| c["exp"] = json!("soon"), 60)), "jwt_malformed");
        // Fractional NumericDates are accepted.
        assert!(at(&|c| c["exp"] = json!(ISSUED as f64 + 3600.5), 60).is_ok());
        // nbf in the future (beyond the leeway).
        assert!(at(&|c| c["nbf"] = json!(ISSUED + 30), 0).is_ok());
        assert_eq!(
            code(at(&|c| c["nbf"] = json!(ISSUED + 31), 0)),
            "jwt_not_yet_valid"
        );
        assert_eq!(
            code(at(
                &|c| {
                    c["nbf"] = json!(ISSUED + 600);
                    c["iat"] = json!(ISSUED + 600);
                },
                0
            )),
            "jwt_not_yet_valid"
        );
        // iat in the future.
        assert_eq!(
            code(at(&|c| c["iat"] = json!(ISSUED + 120), 0)),
            "jwt_not_yet_valid"
        );
        // iat too old (max age 3600 s): a long-lived token issued two hours ago.
        let old = |c: &mut Value| {
            c["iat"] = json!(ISSUED - 7200);
            c["nbf"] = json!(ISSUED - 7200);
            c["exp"] = json!(ISSUED + 86_400);
        };
        assert_eq!(code(at(&old, 0)), "jwt_too_old");
        // … accepted when the provisioner sets no age limit.
        let mut unlimited = settings(&["EdDSA"]);
        unlimited.max_token_age_seconds = 0;
        let verifier = load(&unlimited, &json!({"keys": [key.jwk(Some("k1"), None)]})).unwrap();
        let mut claims = claims();
        old(&mut claims);
        assert!(
            verifier
                .verify(&key.token(&header("EdDSA"), &claims), now())
                .is_ok()
        );
    }

    #[test]
    fn claim_values_are_checked_before_substitution() {
        let key = TestKey::p256();
        let verifier = verifier(&key, "ES256");
        let names = |namespace: Value| {
            let mut claims = claims();
            claims["kubernetes.io"]["namespace"] = namespace;
            let verified = verifier.verify(&key.token(&header("ES256"), &claims), now())?;
            verifier.names(&verified)
        };
        for bad in [
            json!("ml/sa/admin"),
            json!("/"),
            json!(".."),
            json!("ml..x"),
            json!("."),
            json!(""),
            json!("mł"),
            json!("ml admin"),
            json!("ml\n"),
            json!("ml\u{0}"),
            json!("a".repeat(256)),
        ] {
            let error = names(bad.clone()).unwrap_err();
            assert_eq!(error.code(), "jwt_bad_claim", "{bad}: {error}");
            assert!(
                error.to_string().contains("/kubernetes.io/namespace"),
                "{error}"
            );
        }
        for not_a_string in [
            json!(7),
            json!(true),
            json!(null),
            json!(["ml"]),
            json!({"a": "b"}),
        ] {
            assert_eq!(
                code(names(not_a_string.clone())),
                "jwt_bad_claim",
                "{not_a_string}"
            );
        }
        // Values that pass the claim rules but not the SPIFFE ID rules.
        for bad in [
            json!("ml?x=1"),
            json!("ml#x"),
            json!("ml%2fx"),
            json!("a@b"),
        ] {
            assert_eq!(code(names(bad.clone())), "jwt_bad_name", "{bad}");
        }
        assert!(names(json!("ml-prod_2.x")).is_ok());
        // A missing claim names its pointer.
        let mut claims = claims();
        claims["kubernetes.io"]
            .as_object_mut()
            .unwrap()
            .remove("serviceaccount");
        let error = verifier.names(&claims).unwrap_err();
        assert_eq!(error.code(), "jwt_missing_claim");
        assert!(
            error
                .to_string()
                .contains("/kubernetes.io/serviceaccount/name"),
            "{error}"
        );
    }

    #[test]
    fn dns_templates_take_dns_labels_only() {
        let key = TestKey::p256();
        let mut settings = settings(&["ES256"]);
        settings.san_templates = vec!["dns:{/name}.svc.example.com".into()];
        let verifier = load(&settings, &json!({"keys": [key.jwk(Some("k1"), None)]})).unwrap();
        let names = |name: &str| {
            let mut claims = claims();
            claims["name"] = json!(name);
            verifier.names(&claims)
        };
        assert_eq!(
            names("API.eu").unwrap(),
            [SubjectAltName::Dns("api.eu.svc.example.com".into())]
        );
        for bad in [
            "*",
            "a_b",
            "-a",
            "a-",
            "a:b",
            "system:serviceaccount:ml:trainer",
            &"a".repeat(64),
        ] {
            assert_eq!(code(names(bad)), "jwt_bad_claim", "{bad}");
        }
        // A name that is too long as a whole is refused by the DNS rules.
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
        ]
        .join(".");
        assert_eq!(code(names(&long)), "jwt_bad_name");
    }

    #[test]
    fn headers_that_bring_keys_are_refused() {
        let key = TestKey::p256();
        let verifier = verifier(&key, "ES256");
        for (member, value) in [
            ("jku", json!("https://evil.example.com/jwks.json")),
            ("jwk", key.jwk(None, None)),
            ("x5u", json!("https://evil.example.com/cert.pem")),
            ("x5c", json!(["MIIB"])),
            ("crit", json!(["exp"])),
            ("b64", json!(false)),
        ] {
            let mut header = header("ES256");
            header[member] = value;
            let token = key.token(&header, &claims());
            assert_eq!(
                code(verifier.verify(&token, now())),
                "jwt_unsupported_header",
                "{member}"
            );
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let key = TestKey::p256();
        let verifier = verifier(&key, "ES256");
        let token = key.token(&header("ES256"), &claims());
        let parts: Vec<&str> = token.split('.').collect();
        let header_json = b64(header("ES256").to_string().as_bytes());
        let signed = |header: &str, payload: &str| {
            let input = format!("{header}.{payload}");
            format!("{input}.{}", b64(&key.sign("ES256", input.as_bytes())))
        };
        let cases = [
            String::new(),
            "abc".into(),
            format!("{}.{}", parts[0], parts[1]),
            format!("{token}.extra"),
            // Padding, standard-alphabet and invalid characters.
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                parts[2].replace('-', "+").replace('_', "/") + "+/"
            ),
            format!("!!.{}.{}", parts[1], parts[2]),
            format!(".{}.{}", parts[1], parts[2]),
            // A header that is not JSON, not an object, or has a duplicate member.
            format!("{}.{}.{}", b64(b"{\"alg\":"), parts[1], parts[2]),
            format!("{}.{}.{}", b64(b"[\"ES256\"]"), parts[1], parts[2]),
            format!(
                "{}.{}.{}",
                b64(br#"{"alg":"ES256","kid":"k1","kid":"k2"}"#),
                parts[1],
                parts[2]
            ),
            format!("{}.{}.{}", b64(br#"{"kid":"k1"}"#), parts[1], parts[2]),
            // Signed, but claims that are not JSON, not an object, or repeat a member.
            signed(&header_json, &b64(b"not json")),
            signed(&header_json, &b64(b"[1,2]")),
            signed(
                &header_json,
                &b64(format!(
                    r#"{{"iss":"{ISSUER}","aud":"carimbo","exp":{},"sub":"a","sub":"b"}}"#,
                    ISSUED + 3600
                )
                .as_bytes()),
            ),
        ];
        for token in cases {
            assert_eq!(
                code(verifier.verify(&token, now())),
                "jwt_malformed",
                "{token}"
            );
        }
        // Oversized: refused before anything is decoded.
        let mut big = claims();
        big["padding"] = json!("x".repeat(MAX_TOKEN_BYTES));
        let token = key.token(&header("ES256"), &big);
        assert_eq!(code(verifier.verify(&token, now())), "jwt_too_large");
        assert_eq!(
            code(verifier.verify(&"a".repeat(MAX_TOKEN_BYTES + 1), now())),
            "jwt_too_large"
        );
    }

    #[test]
    fn jwks_refusals() {
        let p256 = TestKey::p256();
        let refuse = |settings: &JwtSettings, jwks: Value, expected: &str| {
            let error = load(settings, &jwks).unwrap_err();
            assert_eq!(error.code(), "jwt_config");
            assert!(
                error.to_string().contains(expected),
                "{error} (expected {expected:?})"
            );
        };
        let es256 = settings(&["ES256"]);
        refuse(
            &es256,
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256", "kid": "h"}]}),
            "symmetric",
        );
        refuse(
            &es256,
            json!({"keys": [p256.jwk(Some("a"), None), p256.jwk(Some("a"), None)]}),
            "duplicate kid",
        );
        refuse(
            &es256,
            json!({"keys": [p256.jwk(Some("a"), None), p256.jwk(None, None)]}),
            "every key needs a kid",
        );
        // An RSA-1024 modulus (any 128 bytes with the top bit set).
        let mut modulus = vec![0xc5; 128];
        modulus[127] = 0x01;
        refuse(
            &settings(&["RS256"]),
            json!({"keys": [{"kty": "RSA", "kid": "r", "alg": "RS256", "n": b64(&modulus), "e": "AQAB"}]}),
            "1024 bits",
        );
        // alg not in the provisioner's algorithms, or not fitting the key.
        refuse(
            &es256,
            json!({"keys": [TestKey::Rsa.jwk(Some("r"), Some("RS256"))]}),
            "not in the provisioner's algorithms",
        );
        refuse(
            &settings(&["ES256", "RS256"]),
            json!({"keys": [p256.jwk(Some("e"), Some("RS256"))]}),
            "does not fit",
        );
        refuse(
            &settings(&["ES256", "ES384"]),
            json!({"keys": [p256.jwk(Some("e"), Some("ES384"))]}),
            "does not fit",
        );
        refuse(
            &es256,
            json!({"keys": [p256.jwk(Some("e"), Some("HS256"))]}),
            "HMAC",
        );
        refuse(
            &es256,
            json!({"keys": [p256.jwk(Some("e"), Some("none"))]}),
            "unsigned",
        );
        // No alg, and the type implies none or several of the allowed algorithms.
        refuse(
            &es256,
            json!({"keys": [TestKey::Rsa.jwk(Some("r"), None)]}),
            "allow none",
        );
        refuse(
            &settings(&["RS256", "PS256"]),
            json!({"keys": [TestKey::Rsa.jwk(Some("r"), None)]}),
            "set \"alg\"",
        );
        // Private keys, other uses, unknown types and curves, bad points.
        let mut private = p256.jwk(Some("e"), None);
        private["d"] = json!(b64(&[1; 32]));
        refuse(&es256, json!({"keys": [private]}), "private key material");
        let mut encryption = p256.jwk(Some("e"), None);
        encryption["use"] = json!("enc");
        refuse(&es256, json!({"keys": [encryption]}), "\"use\"");
        let mut operations = p256.jwk(Some("e"), None);
        operations["key_ops"] = json!(["encrypt"]);
        refuse(&es256, json!({"keys": [operations]}), "key_ops");
        let mut secp256k1 = p256.jwk(Some("e"), None);
        secp256k1["crv"] = json!("secp256k1");
        refuse(&es256, json!({"keys": [secp256k1]}), "not supported");
        refuse(
            &settings(&["EdDSA"]),
            json!({"keys": [{"kty": "OKP", "crv": "Ed448", "x": b64(&[1; 57])}]}),
            "not supported",
        );
        let mut off_curve = p256.jwk(Some("e"), None);
        off_curve["y"] = json!(b64(&[1; 32]));
        refuse(&es256, json!({"keys": [off_curve]}), "not valid");
        let mut short = p256.jwk(Some("e"), None);
        short["x"] = json!(b64(&[1; 31]));
        refuse(&es256, json!({"keys": [short]}), "32 bytes");
        refuse(&es256, json!({"keys": []}), "no keys");
        refuse(&es256, json!([p256.jwk(None, None)]), "\"keys\" array");
        // The file itself.
        let error =
            JwtVerifier::from_settings(&es256, Path::new("/nonexistent/jwks.json")).unwrap_err();
        assert_eq!(error.code(), "jwt_config");
    }

    #[test]
    fn settings_refusals() {
        let refuse = |change: &dyn Fn(&mut JwtSettings), expected: &str| {
            let mut settings = settings(&["ES256"]);
            change(&mut settings);
            let error = settings.check().unwrap_err();
            assert_eq!(error.code(), "jwt_config");
            assert!(
                error.to_string().contains(expected),
                "{error} (expected {expected:?})"
            );
        };
        refuse(&|s| s.algorithms = vec!["none".into()], "unsigned");
        refuse(&|s| s.algorithms = vec!["HS256".into()], "HMAC");
        refuse(
            &|s| s.algorithms = vec!["ES256K".into()],
            "unknown algorithm",
        );
        refuse(&|s| s.algorithms.clear(), "algorithms is empty");
        refuse(&|s| s.issuer.clear(), "issuer");
        refuse(&|s| s.audience.clear(), "audience");
        refuse(&|s| s.leeway_seconds = 301, "at most 300");
        refuse(&|s| s.san_templates.clear(), "san-templates");
        refuse(
            &|s| s.san_templates = vec!["uri:spiffe://{trust-domain}/{unknown}".into()],
            "neither a variable",
        );
        refuse(
            &|s| s.san_templates = vec!["uri:spiffe://{trust-domain}/{/a".into()],
            "without its",
        );
        refuse(
            &|s| s.san_templates = vec!["uri:spiffe://{trust-domain}/a}".into()],
            "without '{'",
        );
        refuse(
            &|s| s.san_templates = vec!["uri:spiffe://{trust-domain}/{/a~2}".into()],
            "JSON pointer",
        );
        refuse(
            &|s| s.san_templates = vec!["email:{/email}".into()],
            "dns:, uri: or ip:",
        );
        refuse(
            &|s| s.san_templates = vec!["uri:https://{trust-domain}/{/sub}".into()],
            "spiffe",
        );
        refuse(
            &|s| s.san_templates = vec!["uri:spiffe://{trust-domain}".into()],
            "path",
        );
        refuse(
            &|s| s.san_templates = vec!["dns:*.{/sub}.example.com".into()],
            "wildcard",
        );
        refuse(
            &|s| {
                s.variables
                    .insert("trust-domain".into(), "Lab.Example.com".into());
            },
            "lower case",
        );
        refuse(
            &|s| {
                s.variables.insert("trust-domain".into(), "lab/x".into());
            },
            "'/'",
        );
        // IP templates: fixed ones are checked at load; claims are checked per token.
        let mut ip = settings(&["ES256"]);
        ip.san_templates = vec!["ip:192.0.2.1".into(), "ip:{/ip}".into()];
        assert!(ip.check().is_ok());
    }

    #[test]
    fn settings_read_from_toml() {
        let text = r#"
            jwks = "k8s-jwks.json"
            issuer = "https://kubernetes.default.svc"
            audience = "carimbo"
            algorithms = ["RS256", "ES256"]
            san-templates = ["uri:spiffe://{trust-domain}/ns/{/kubernetes.io/namespace}/sa/{/kubernetes.io/serviceaccount/name}"]
            variables = { trust-domain = "lab.example.com" }
        "#;
        let settings: JwtSettings = toml::from_str(text).unwrap();
        assert_eq!(settings.leeway_seconds, 30);
        assert_eq!(settings.max_token_age_seconds, 3600);
        assert_eq!(settings.variables["trust-domain"], "lab.example.com");
        assert!(settings.check().is_ok());
        let unknown = format!("{text}\nallow-none = true\n");
        assert!(toml::from_str::<JwtSettings>(&unknown).is_err());
    }

    #[test]
    fn identity_escapes_control_characters() {
        let verifier = verifier(&TestKey::p256(), "ES256");
        assert_eq!(
            verifier.identity(&json!({"sub": "a\nb"})),
            "jwt:https://kubernetes.default.svc#a\\nb"
        );
        assert_eq!(
            verifier.identity(&json!({})),
            "jwt:https://kubernetes.default.svc#"
        );
    }
}
