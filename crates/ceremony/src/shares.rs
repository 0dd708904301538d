//! M-of-N secrets for the offline side: token PINs (and backup wrapping keys) are made
//! by the tool, never shown whole, split with Shamir's scheme (GF(256), crate
//! `blahaj`) into one share file per holder, and checked against a stored salted
//! HMAC when joined again — so a wrong share set is refused before the secret is used
//! (real HSMs lock a PIN after a few failed logins).
//!
//! A share file is plain text, easy to print or type back:
//!
//! ```text
//! carimbo secret share v1
//! secret: root user PIN
//! holder: Ana Souza
//! threshold: 2 of 3
//! value: 01a3f0…
//! check: 5c2e9a10
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::transcript::sha256_hex;
use crate::{CeremonyError, Result};

const SHARE_HEADER: &str = "carimbo secret share v1";
/// Characters of generated PINs (no look-alikes: 0/O, 1/l/I).
const PIN_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
/// Length of generated PINs (≈ 140 bits).
pub const PIN_LENGTH: usize = 24;

/// A secret to split.
pub type Secret = Zeroizing<Vec<u8>>;

fn random(n: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| CeremonyError::Refused("random generator failed".into()))?;
    Ok(bytes)
}

/// A fresh random PIN of [`PIN_LENGTH`] characters.
pub fn generate_pin() -> Result<Zeroizing<String>> {
    let mut pin = Zeroizing::new(String::with_capacity(PIN_LENGTH));
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - 256 % PIN_ALPHABET.len();
    while pin.len() < PIN_LENGTH {
        for byte in random(32)?.iter() {
            if (*byte as usize) < limit && pin.len() < PIN_LENGTH {
                pin.push(PIN_ALPHABET[*byte as usize % PIN_ALPHABET.len()] as char);
            }
        }
    }
    Ok(pin)
}

/// Salted HMAC of a secret, stored to check a joined secret before using it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecretCheck {
    /// Random salt (hex).
    pub salt: String,
    /// HMAC-SHA-256(salt, secret) (hex).
    pub hmac_sha256: String,
}

impl SecretCheck {
    /// A check value for `secret`.
    pub fn new(secret: &[u8]) -> Result<Self> {
        let salt = random(32)?;
        Ok(Self {
            salt: hex::encode(&salt[..]),
            hmac_sha256: hex::encode(mac(&salt, secret)),
        })
    }

    /// Whether `secret` is the one checked (constant-time compare).
    pub fn matches(&self, secret: &[u8]) -> bool {
        let (Ok(salt), Ok(expected)) = (hex::decode(&self.salt), hex::decode(&self.hmac_sha256))
        else {
            return false;
        };
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &salt);
        aws_lc_rs::hmac::verify(&key, secret, &expected).is_ok()
    }
}

fn mac(salt: &[u8], secret: &[u8]) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, salt);
    aws_lc_rs::hmac::sign(&key, secret).as_ref().to_vec()
}

/// One holder's share, as written to and read from a share file. `Debug` shows who
/// holds it, never its value.
pub struct ShareFile {
    /// What the secret is (`root user PIN`).
    pub secret: String,
    /// Who holds the share.
    pub holder: String,
    /// Shares needed.
    pub threshold: u8,
    /// Shares made.
    pub count: u8,
    /// The share bytes (x coordinate first).
    pub value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ShareFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareFile")
            .field("secret", &self.secret)
            .field("holder", &self.holder)
            .field("threshold", &self.threshold)
            .field("count", &self.count)
            .field("value", &"[redacted]")
            .finish()
    }
}

impl ShareFile {
    /// The file's text.
    pub fn to_text(&self) -> Zeroizing<String> {
        let value = Zeroizing::new(hex::encode(&self.value[..]));
        Zeroizing::new(format!(
            "{SHARE_HEADER}\nsecret: {}\nholder: {}\nthreshold: {} of {}\nvalue: {}\ncheck: {}\n",
            self.secret,
            self.holder,
            self.threshold,
            self.count,
            value.as_str(),
            &sha256_hex(value.as_bytes())[..8],
        ))
    }

    /// Parses a share file; a mistyped value fails its check digits.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        let bad =
            |why: &str| CeremonyError::Refused(format!("share file {}: {why}", origin.display()));
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some(SHARE_HEADER) {
            return Err(bad("not a carimbo secret share"));
        }
        let fields: BTreeMap<&str, &str> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let field = |name: &str| {
            fields
                .get(name)
                .copied()
                .ok_or_else(|| bad(&format!("no {name} line")))
        };
        let (threshold, count) = field("threshold")?
            .split_once(" of ")
            .and_then(|(m, n)| Some((m.trim().parse().ok()?, n.trim().parse().ok()?)))
            .ok_or_else(|| bad("threshold line is not 'M of N'"))?;
        let value_text = field("value")?;
        if !sha256_hex(value_text.as_bytes()).starts_with(field("check")?)
            || field("check")?.len() != 8
        {
            return Err(bad("the value does not match its check digits (mistyped?)"));
        }
        let value = Zeroizing::new(hex::decode(value_text).map_err(|_| bad("value is not hex"))?);
        Ok(Self {
            secret: field("secret")?.to_owned(),
            holder: field("holder")?.to_owned(),
            threshold,
            count,
            value,
        })
    }
}

/// Splits `secret` into one share per holder, `threshold` of them needed.
pub fn split(
    secret: &[u8],
    what: &str,
    threshold: u8,
    holders: &[String],
) -> Result<Vec<ShareFile>> {
    let count = u8::try_from(holders.len())
        .map_err(|_| CeremonyError::Refused("at most 255 share holders".into()))?;
    if threshold < 2 || threshold > count {
        return Err(CeremonyError::Refused(format!(
            "threshold {threshold} must be between 2 and the number of holders ({count})"
        )));
    }
    let dealer = blahaj::Sharks(threshold).dealer(secret);
    Ok(holders
        .iter()
        .zip(dealer)
        .map(|(holder, share)| ShareFile {
            secret: what.to_owned(),
            holder: holder.clone(),
            threshold,
            count,
            value: Zeroizing::new(Vec::from(&share)),
        })
        .collect())
}

/// Joins share files back into the secret and checks it against `check` — before the
/// secret is used anywhere.
pub fn join(shares: &[ShareFile], what: &str, check: &SecretCheck) -> Result<Secret> {
    let first = shares
        .first()
        .ok_or_else(|| CeremonyError::Refused(format!("no shares given for the {what}")))?;
    if shares
        .iter()
        .any(|s| s.secret != first.secret || s.threshold != first.threshold)
    {
        return Err(CeremonyError::Refused(format!(
            "the shares given for the {what} belong to different secrets"
        )));
    }
    if shares.len() < usize::from(first.threshold) {
        return Err(CeremonyError::Refused(format!(
            "{} share(s) given for the {what}; {} are needed",
            shares.len(),
            first.threshold
        )));
    }
    let parsed: Vec<blahaj::Share> = shares
        .iter()
        .map(|s| blahaj::Share::try_from(&s.value[..]))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| CeremonyError::Refused(format!("bad share for the {what}: {e}")))?;
    let secret = Zeroizing::new(
        blahaj::Sharks(first.threshold)
            .recover(&parsed)
            .map_err(|e| CeremonyError::Refused(format!("cannot join the {what}: {e}")))?,
    );
    if !check.matches(&secret) {
        return Err(CeremonyError::Refused(format!(
            "the shares do not reconstruct the {what} (a wrong or damaged share); it was not used"
        )));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holders(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("holder {i}")).collect()
    }

    #[test]
    fn any_threshold_subset_joins_and_fewer_or_wrong_do_not() {
        let pin = generate_pin().unwrap();
        assert_eq!(pin.len(), PIN_LENGTH);
        let check = SecretCheck::new(pin.as_bytes()).unwrap();
        let shares = split(pin.as_bytes(), "user PIN", 2, &holders(3)).unwrap();
        let texts: Vec<_> = shares.iter().map(|s| s.to_text()).collect();
        let parsed: Vec<ShareFile> = texts
            .iter()
            .map(|t| ShareFile::parse(t, Path::new("x")).unwrap())
            .collect();
        for pair in [[0, 1], [0, 2], [1, 2]] {
            let subset: Vec<ShareFile> = pair
                .iter()
                .map(|&i| ShareFile::parse(&texts[i], Path::new("x")).unwrap())
                .collect();
            assert_eq!(
                &join(&subset, "user PIN", &check).unwrap()[..],
                pin.as_bytes()
            );
        }
        assert!(join(&parsed[..1], "user PIN", &check).is_err());
        // A share of another secret joins to garbage, refused by the check.
        let other = split(b"another secret of equal len", "user PIN", 2, &holders(3)).unwrap();
        let mixed = vec![
            ShareFile::parse(&texts[0], Path::new("x")).unwrap(),
            ShareFile::parse(&other[1].to_text(), Path::new("y")).unwrap(),
        ];
        let error = join(&mixed, "user PIN", &check).unwrap_err().to_string();
        assert!(
            error.contains("wrong or damaged") || error.contains("cannot join"),
            "{error}"
        );
    }

    #[test]
    fn mistyped_shares_fail_their_check_digits() {
        let shares = split(b"secret-secret", "so PIN", 2, &holders(2)).unwrap();
        let text = shares[0].to_text().replace("value: 0", "value: 1");
        let text = if text == *shares[0].to_text() {
            shares[0].to_text().replacen("value: ", "value: ff", 1)
        } else {
            text
        };
        assert!(ShareFile::parse(&text, Path::new("x")).is_err());
        assert!(split(b"s", "x", 3, &holders(2)).is_err());
        assert!(split(b"s", "x", 1, &holders(2)).is_err());
    }
}
