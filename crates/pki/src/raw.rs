//! Certificates and CRLs split into their raw DER fields, for exact comparisons (TBS
//! bytes, algorithm identifiers, names, time encodings) that a parsed view hides.

use crate::der::{
    self, RawExtension, Reader, TAG_BIT_STRING, TAG_GENERALIZED_TIME, TAG_INTEGER, TAG_SEQUENCE,
    TAG_UTC_TIME, Tlv, context_constructed, context_primitive,
};

/// The signature BIT STRING's bytes, refusing unused bits.
fn signature_bits<'a>(bits: Tlv<'a>) -> Result<&'a [u8], String> {
    match bits.content.split_first() {
        Some((0, signature)) => Ok(signature),
        _ => Err("signature BIT STRING has unused bits".into()),
    }
}

/// The three parts of any signed X.509 object.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Signed<'a> {
    /// The to-be-signed SEQUENCE, whole.
    pub tbs: Tlv<'a>,
    /// The outer signatureAlgorithm, whole.
    pub algorithm: Tlv<'a>,
    /// The signature bytes.
    pub signature: &'a [u8],
}

impl<'a> Signed<'a> {
    pub(crate) fn parse(der: &'a [u8]) -> Result<Self, String> {
        let outer = der::parse_single(der, TAG_SEQUENCE)?;
        let mut fields = Reader::new(outer.content);
        let tbs = fields.read(TAG_SEQUENCE)?;
        let algorithm = fields.read(TAG_SEQUENCE)?;
        let signature = signature_bits(fields.read(TAG_BIT_STRING)?)?;
        if !fields.is_empty() {
            return Err("trailing fields after the signature".into());
        }
        Ok(Self {
            tbs,
            algorithm,
            signature,
        })
    }
}

/// `SEQUENCE { tbs, algorithm, BIT STRING signature }`.
pub(crate) fn assemble(tbs: &[u8], algorithm: &[u8], signature: &[u8]) -> Vec<u8> {
    der::sequence(&[tbs, algorithm, &der::bit_string(signature)])
}

/// A certificate's raw fields.
#[derive(Clone, Debug)]
pub(crate) struct RawCertificate<'a> {
    pub signed: Signed<'a>,
    pub version: Option<Tlv<'a>>,
    pub serial: Tlv<'a>,
    pub inner_algorithm: Tlv<'a>,
    pub issuer: Tlv<'a>,
    pub not_before: Tlv<'a>,
    pub not_after: Tlv<'a>,
    pub subject: Tlv<'a>,
    pub spki: Tlv<'a>,
    pub issuer_unique_id: Option<Tlv<'a>>,
    pub subject_unique_id: Option<Tlv<'a>>,
    pub extensions: Vec<RawExtension<'a>>,
}

fn read_time<'a>(reader: &mut Reader<'a>) -> Result<Tlv<'a>, String> {
    match reader.peek_tag() {
        Some(TAG_UTC_TIME | TAG_GENERALIZED_TIME) => reader.read_any(),
        _ => Err("expected UTCTime or GeneralizedTime".into()),
    }
}

impl<'a> RawCertificate<'a> {
    pub(crate) fn parse(der: &'a [u8]) -> Result<Self, String> {
        let signed = Signed::parse(der)?;
        let mut fields = Reader::new(signed.tbs.content);
        let version = fields.read_optional(context_constructed(0))?;
        let serial = fields.read(TAG_INTEGER)?;
        let inner_algorithm = fields.read(TAG_SEQUENCE)?;
        let issuer = fields.read(TAG_SEQUENCE)?;
        let validity = fields.read(TAG_SEQUENCE)?;
        let mut times = Reader::new(validity.content);
        let not_before = read_time(&mut times)?;
        let not_after = read_time(&mut times)?;
        if !times.is_empty() {
            return Err("trailing bytes in validity".into());
        }
        let subject = fields.read(TAG_SEQUENCE)?;
        let spki = fields.read(TAG_SEQUENCE)?;
        let issuer_unique_id = fields.read_optional(context_primitive(1))?;
        let subject_unique_id = fields.read_optional(context_primitive(2))?;
        let extensions = match fields.read_optional(context_constructed(3))? {
            Some(wrapper) => {
                let list = der::parse_single(wrapper.content, TAG_SEQUENCE)?;
                der::parse_extensions(list.content)?
            }
            None => Vec::new(),
        };
        if !fields.is_empty() {
            return Err("trailing fields in tbsCertificate".into());
        }
        Ok(Self {
            signed,
            version,
            serial,
            inner_algorithm,
            issuer,
            not_before,
            not_after,
            subject,
            spki,
            issuer_unique_id,
            subject_unique_id,
            extensions,
        })
    }

    /// The extension with `oid`, first occurrence.
    pub(crate) fn extension(&self, oid: &[u8]) -> Option<&RawExtension<'a>> {
        self.extensions.iter().find(|e| e.oid == oid)
    }
}

/// One revokedCertificates entry.
#[derive(Clone, Debug)]
pub(crate) struct RawRevoked<'a> {
    pub serial: Tlv<'a>,
    pub date: Tlv<'a>,
    pub extensions: Vec<RawExtension<'a>>,
}

/// A CRL's raw fields.
#[derive(Clone, Debug)]
pub(crate) struct RawCrl<'a> {
    pub signed: Signed<'a>,
    pub version: Option<Tlv<'a>>,
    pub inner_algorithm: Tlv<'a>,
    pub issuer: Tlv<'a>,
    pub this_update: Tlv<'a>,
    pub next_update: Option<Tlv<'a>>,
    /// The revokedCertificates SEQUENCE when present (even if empty).
    pub revoked_list: Option<Tlv<'a>>,
    pub revoked: Vec<RawRevoked<'a>>,
    pub extensions: Vec<RawExtension<'a>>,
}

impl<'a> RawCrl<'a> {
    pub(crate) fn parse(der: &'a [u8]) -> Result<Self, String> {
        let signed = Signed::parse(der)?;
        let mut fields = Reader::new(signed.tbs.content);
        let version = fields.read_optional(TAG_INTEGER)?;
        let inner_algorithm = fields.read(TAG_SEQUENCE)?;
        let issuer = fields.read(TAG_SEQUENCE)?;
        let this_update = read_time(&mut fields)?;
        let next_update = match fields.peek_tag() {
            Some(TAG_UTC_TIME | TAG_GENERALIZED_TIME) => Some(fields.read_any()?),
            _ => None,
        };
        let revoked_list = fields.read_optional(TAG_SEQUENCE)?;
        let mut revoked = Vec::new();
        if let Some(list) = revoked_list {
            let mut entries = Reader::new(list.content);
            while !entries.is_empty() {
                let entry = entries.read(TAG_SEQUENCE)?;
                let mut parts = Reader::new(entry.content);
                let serial = parts.read(TAG_INTEGER)?;
                let date = read_time(&mut parts)?;
                let extensions = match parts.read_optional(TAG_SEQUENCE)? {
                    Some(list) => der::parse_extensions(list.content)?,
                    None => Vec::new(),
                };
                if !parts.is_empty() {
                    return Err("trailing fields in a revoked entry".into());
                }
                revoked.push(RawRevoked {
                    serial,
                    date,
                    extensions,
                });
            }
        }
        let extensions = match fields.read_optional(context_constructed(0))? {
            Some(wrapper) => {
                let list = der::parse_single(wrapper.content, TAG_SEQUENCE)?;
                der::parse_extensions(list.content)?
            }
            None => Vec::new(),
        };
        if !fields.is_empty() {
            return Err("trailing fields in tbsCertList".into());
        }
        Ok(Self {
            signed,
            version,
            inner_algorithm,
            issuer,
            this_update,
            next_update,
            revoked_list,
            revoked,
            extensions,
        })
    }

    /// The CRL extension with `oid`, first occurrence.
    pub(crate) fn extension(&self, oid: &[u8]) -> Option<&RawExtension<'a>> {
        self.extensions.iter().find(|e| e.oid == oid)
    }
}

/// A time field decoded, with whether it is encoded as RFC 5280 §4.1.2.5 requires
/// (UTCTime `YYMMDDHHMMSSZ` for 1950–2049, GeneralizedTime `YYYYMMDDHHMMSSZ` from
/// 2050, no fractions); `Err` with the reason otherwise.
pub(crate) fn check_time_encoding(time: &Tlv<'_>) -> Result<(), String> {
    let text = std::str::from_utf8(time.content).map_err(|_| "time is not ASCII".to_string())?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match time.tag {
        TAG_UTC_TIME => {
            if text.len() != 13 || !text.ends_with('Z') || !digits(&text[..12]) {
                return Err(format!("UTCTime {text:?} is not YYMMDDHHMMSSZ"));
            }
            Ok(())
        }
        TAG_GENERALIZED_TIME => {
            if text.len() != 15 || !text.ends_with('Z') || !digits(&text[..14]) {
                return Err(format!("GeneralizedTime {text:?} is not YYYYMMDDHHMMSSZ"));
            }
            let year: u32 = text[..4].parse().map_err(|_| "bad year".to_string())?;
            if (1950..2050).contains(&year) {
                return Err(format!(
                    "GeneralizedTime {text:?} used for a date before 2050; UTCTime is required"
                ));
            }
            Ok(())
        }
        other => Err(format!("tag {other:#04x} is not a time")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(tag: u8, text: &str) -> Vec<u8> {
        der::tlv(tag, text.as_bytes())
    }

    #[test]
    fn time_encodings_follow_rfc5280() {
        let ok = [
            time(TAG_UTC_TIME, "491231235959Z"),
            time(TAG_GENERALIZED_TIME, "20500101000000Z"),
        ];
        for bytes in &ok {
            let tlv = der::parse_single(bytes, bytes[0]).unwrap();
            assert!(check_time_encoding(&tlv).is_ok());
        }
        let bad = [
            time(TAG_UTC_TIME, "4912312359Z"),
            time(TAG_UTC_TIME, "491231235959+0100"),
            time(TAG_GENERALIZED_TIME, "20300101000000Z"),
            time(TAG_GENERALIZED_TIME, "20500101000000.5Z"),
        ];
        for bytes in &bad {
            let tlv = der::parse_single(bytes, bytes[0]).unwrap();
            assert!(check_time_encoding(&tlv).is_err(), "{bytes:?}");
        }
    }
}
