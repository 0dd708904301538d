//! PEM (RFC 7468) encoding and decoding.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::PkiError;

/// `der` as PEM with `label` (`CERTIFICATE`, `X509 CRL`, `PUBLIC KEY`, ...), base64 in
/// 64-character lines, LF line endings.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let encoded = BASE64.encode(der);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// The DER inside the first PEM block labelled `label` in `text`. Text around the
/// block (explanatory lines as `openssl x509 -text` writes) is ignored; whitespace
/// inside the block is ignored; anything else inside it is an error.
pub fn pem_decode(text: &str, label: &str) -> Result<Vec<u8>, PkiError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .ok_or_else(|| PkiError::Parse(format!("no PEM block labelled {label}")))?
        + begin.len();
    let length = text[start..]
        .find(&end)
        .ok_or_else(|| PkiError::Parse(format!("PEM block {label} is not terminated")))?;
    let body: String = text[start..start + length]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = BASE64
        .decode(body)
        .map_err(|e| PkiError::Parse(format!("PEM block {label}: {e}")))?;
    if der.is_empty() {
        return Err(PkiError::Parse(format!("PEM block {label} is empty")));
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_with_surrounding_text() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = pem_encode("CERTIFICATE", &der);
        assert!(pem.lines().all(|line| line.len() <= 64));
        let text = format!("Subject: x\n{pem}trailing\n");
        assert_eq!(pem_decode(&text, "CERTIFICATE").unwrap(), der);
        assert!(pem_decode(&text, "X509 CRL").is_err());
        assert!(pem_decode("-----BEGIN X-----\n!!\n-----END X-----\n", "X").is_err());
        assert!(pem_decode("-----BEGIN X-----\nAAAA\n", "X").is_err());
    }
}
