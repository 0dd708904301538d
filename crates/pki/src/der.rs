//! A little DER: a strict reader over definite-length TLVs (enough to split
//! certificates and CRLs into their raw fields), a writer for the few structures rcgen
//! has no helper for (AIA, name constraints, issuing distribution point), and the OIDs
//! the lints compare against (DER content bytes, without tag and length).

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_ENUMERATED: u8 = 0x0a;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
pub(crate) const TAG_PRINTABLE_STRING: u8 = 0x13;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;

/// Context-specific constructed tag `[n]`.
pub(crate) const fn context_constructed(n: u8) -> u8 {
    0xa0 | n
}

/// Context-specific primitive tag `[n]`.
pub(crate) const fn context_primitive(n: u8) -> u8 {
    0x80 | n
}

/// OIDs as DER content bytes.
pub(crate) mod oid {
    /// 2.5.4.3 commonName.
    pub(crate) const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    /// 2.5.4.6 countryName.
    pub(crate) const COUNTRY: &[u8] = &[0x55, 0x04, 0x06];
    /// 2.5.4.7 localityName.
    pub(crate) const LOCALITY: &[u8] = &[0x55, 0x04, 0x07];
    /// 2.5.4.8 stateOrProvinceName.
    pub(crate) const STATE: &[u8] = &[0x55, 0x04, 0x08];
    /// 2.5.4.10 organizationName.
    pub(crate) const ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
    /// 2.5.4.11 organizationalUnitName.
    pub(crate) const ORGANIZATIONAL_UNIT: &[u8] = &[0x55, 0x04, 0x0b];

    /// 2.5.29.14 subjectKeyIdentifier.
    pub(crate) const SUBJECT_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x0e];
    /// 2.5.29.15 keyUsage.
    pub(crate) const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    /// 2.5.29.17 subjectAltName.
    pub(crate) const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    /// 2.5.29.19 basicConstraints.
    pub(crate) const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    /// 2.5.29.20 cRLNumber.
    pub(crate) const CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
    /// 2.5.29.21 reasonCode.
    pub(crate) const REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];
    /// 2.5.29.28 issuingDistributionPoint.
    pub(crate) const ISSUING_DISTRIBUTION_POINT: &[u8] = &[0x55, 0x1d, 0x1c];
    /// 2.5.29.30 nameConstraints.
    pub(crate) const NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x1e];
    /// 2.5.29.31 cRLDistributionPoints.
    pub(crate) const CRL_DISTRIBUTION_POINTS: &[u8] = &[0x55, 0x1d, 0x1f];
    /// 2.5.29.32 certificatePolicies.
    pub(crate) const CERTIFICATE_POLICIES: &[u8] = &[0x55, 0x1d, 0x20];
    /// 2.5.29.33 policyMappings.
    pub(crate) const POLICY_MAPPINGS: &[u8] = &[0x55, 0x1d, 0x21];
    /// 2.5.29.35 authorityKeyIdentifier.
    pub(crate) const AUTHORITY_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x23];
    /// 2.5.29.36 policyConstraints.
    pub(crate) const POLICY_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x24];
    /// 2.5.29.37 extKeyUsage.
    pub(crate) const EXTENDED_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    /// 2.5.29.54 inhibitAnyPolicy.
    pub(crate) const INHIBIT_ANY_POLICY: &[u8] = &[0x55, 0x1d, 0x36];
    /// 1.3.6.1.5.5.7.1.1 authorityInfoAccess.
    pub(crate) const AUTHORITY_INFO_ACCESS: &[u8] =
        &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
    /// 1.3.6.1.5.5.7.48.1 id-ad-ocsp.
    pub(crate) const AD_OCSP: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    /// 1.3.6.1.5.5.7.48.2 id-ad-caIssuers.
    pub(crate) const AD_CA_ISSUERS: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    /// 1.3.6.1.5.5.7.48.1.1 id-pkix-ocsp-basic.
    pub(crate) const OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
    /// 1.3.6.1.5.5.7.48.1.2 id-pkix-ocsp-nonce.
    pub(crate) const OCSP_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
    /// 1.3.6.1.5.5.7.48.1.5 id-pkix-ocsp-nocheck.
    pub(crate) const OCSP_NOCHECK: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05];
    /// 1.3.14.3.2.26 id-sha1.
    pub(crate) const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    /// 2.16.840.1.101.3.4.2.1 id-sha256.
    pub(crate) const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    /// 2.16.840.1.101.3.4.2.2 id-sha384.
    pub(crate) const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    /// 2.16.840.1.101.3.4.2.3 id-sha512.
    pub(crate) const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

    /// Extensions RFC 5280 defines for certificates that a relying party can process;
    /// any other extension must not be critical.
    pub(crate) const KNOWN_CERTIFICATE_EXTENSIONS: &[&[u8]] = &[
        SUBJECT_KEY_IDENTIFIER,
        KEY_USAGE,
        SUBJECT_ALT_NAME,
        BASIC_CONSTRAINTS,
        NAME_CONSTRAINTS,
        CRL_DISTRIBUTION_POINTS,
        CERTIFICATE_POLICIES,
        POLICY_MAPPINGS,
        AUTHORITY_KEY_IDENTIFIER,
        POLICY_CONSTRAINTS,
        EXTENDED_KEY_USAGE,
        INHIBIT_ANY_POLICY,
        AUTHORITY_INFO_ACCESS,
    ];
}

/// One DER element: its tag, content, and the whole encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    /// The (single-byte) tag.
    pub tag: u8,
    /// The content octets.
    pub content: &'a [u8],
    /// Tag, length and content.
    pub raw: &'a [u8],
}

/// A strict DER reader: single-byte tags, definite minimal lengths.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The tag of the next element, if any.
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads the next element, whatever its tag.
    pub(crate) fn read_any(&mut self) -> Result<Tlv<'a>, String> {
        let start = self.rest;
        let (&tag, rest) = start.split_first().ok_or("unexpected end of data")?;
        if tag & 0x1f == 0x1f {
            return Err("multi-byte tags are not supported".into());
        }
        let (&first, mut rest) = rest.split_first().ok_or("missing length")?;
        let length = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 {
                return Err("indefinite length is not DER".into());
            }
            if count > 4 || rest.len() < count {
                return Err("length out of range".into());
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            let length = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
            if length < 0x80 || bytes.first() == Some(&0) {
                return Err("non-minimal length is not DER".into());
            }
            length
        };
        if rest.len() < length {
            return Err("element longer than its container".into());
        }
        let header = start.len() - rest.len();
        let (content, after) = rest.split_at(length);
        self.rest = after;
        Ok(Tlv {
            tag,
            content,
            raw: &start[..header + length],
        })
    }

    /// Reads the next element and checks its tag.
    pub(crate) fn read(&mut self, tag: u8) -> Result<Tlv<'a>, String> {
        match self.peek_tag() {
            Some(found) if found == tag => self.read_any(),
            Some(found) => Err(format!("expected tag {tag:#04x}, found {found:#04x}")),
            None => Err(format!("expected tag {tag:#04x}, found end of data")),
        }
    }

    /// Reads the next element if it has `tag`.
    pub(crate) fn read_optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, String> {
        if self.peek_tag() == Some(tag) {
            self.read_any().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Every remaining element.
    pub(crate) fn read_all(&mut self) -> Result<Vec<Tlv<'a>>, String> {
        let mut items = Vec::new();
        while !self.is_empty() {
            items.push(self.read_any()?);
        }
        Ok(items)
    }
}

/// Parses `bytes` as exactly one element with `tag`.
pub(crate) fn parse_single(bytes: &[u8], tag: u8) -> Result<Tlv<'_>, String> {
    let mut reader = Reader::new(bytes);
    let element = reader.read(tag)?;
    if !reader.is_empty() {
        return Err("trailing bytes".into());
    }
    Ok(element)
}

fn push_length(out: &mut Vec<u8>, length: usize) {
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Tag, length and `content`.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_length(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already-encoded elements.
pub(crate) fn sequence(elements: &[&[u8]]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &elements.concat())
}

/// An OID element from its content bytes.
pub(crate) fn oid(content: &[u8]) -> Vec<u8> {
    tlv(TAG_OID, content)
}

/// A BIT STRING with no unused bits.
pub(crate) fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(TAG_BIT_STRING, &content)
}

/// The minimal two's-complement content of a non-negative integer given as unsigned
/// big-endian bytes.
pub(crate) fn unsigned_integer_content(magnitude: &[u8]) -> Vec<u8> {
    let trimmed = match magnitude.iter().position(|b| *b != 0) {
        Some(start) => &magnitude[start..],
        None => return vec![0],
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    content
}

/// An `Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }`.
pub(crate) fn extension(oid_content: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut content = oid(oid_content);
    if critical {
        content.extend_from_slice(&[TAG_BOOLEAN, 1, 0xff]);
    }
    content.extend_from_slice(&tlv(TAG_OCTET_STRING, value));
    tlv(TAG_SEQUENCE, &content)
}

/// Rebuilds the SEQUENCE `sequence_der` with some of its elements replaced.
pub(crate) fn replace_elements(
    sequence_der: &[u8],
    replacements: &[(usize, &[u8])],
) -> Result<Vec<u8>, String> {
    let outer = parse_single(sequence_der, TAG_SEQUENCE)?;
    let elements = Reader::new(outer.content).read_all()?;
    let mut content = Vec::with_capacity(outer.content.len() + 64);
    for (index, element) in elements.iter().enumerate() {
        match replacements.iter().find(|(at, _)| *at == index) {
            Some((_, replacement)) => content.extend_from_slice(replacement),
            None => content.extend_from_slice(element.raw),
        }
    }
    if let Some((at, _)) = replacements.iter().find(|(at, _)| *at >= elements.len()) {
        return Err(format!("no element {at} to replace"));
    }
    Ok(tlv(TAG_SEQUENCE, &content))
}

/// A parsed extension, from the raw DER.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawExtension<'a> {
    /// OID content bytes.
    pub oid: &'a [u8],
    /// The critical flag (FALSE when absent).
    pub critical: bool,
    /// Whether the critical flag was encoded explicitly as FALSE (not DER).
    pub explicit_false: bool,
    /// The extnValue content.
    pub value: &'a [u8],
}

/// Parses `Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension` given its content.
pub(crate) fn parse_extensions(content: &[u8]) -> Result<Vec<RawExtension<'_>>, String> {
    let mut reader = Reader::new(content);
    let mut extensions = Vec::new();
    while !reader.is_empty() {
        let extension = reader.read(TAG_SEQUENCE)?;
        let mut fields = Reader::new(extension.content);
        let oid = fields.read(TAG_OID)?.content;
        let mut critical = false;
        let mut explicit_false = false;
        if let Some(flag) = fields.read_optional(TAG_BOOLEAN)? {
            match flag.content {
                [0xff] => critical = true,
                [0x00] => explicit_false = true,
                _ => return Err("critical flag is not a DER BOOLEAN".into()),
            }
        }
        let value = fields.read(TAG_OCTET_STRING)?.content;
        if !fields.is_empty() {
            return Err("trailing fields in an extension".into());
        }
        extensions.push(RawExtension {
            oid,
            critical,
            explicit_false,
            value,
        });
    }
    Ok(extensions)
}

/// Dotted form of an OID given as content bytes (for messages).
pub(crate) fn oid_to_string(content: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for byte in content {
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_rejects_non_der_lengths() {
        assert!(Reader::new(&[0x04, 0x81, 0x01, 0x00]).read_any().is_err());
        assert!(Reader::new(&[0x04, 0x80, 0x00, 0x00]).read_any().is_err());
        assert!(Reader::new(&[0x04, 0x02, 0x00]).read_any().is_err());
        let long = tlv(TAG_OCTET_STRING, &[7u8; 300]);
        let element = parse_single(&long, TAG_OCTET_STRING).unwrap();
        assert_eq!(element.content.len(), 300);
        assert_eq!(element.raw, &long[..]);
    }

    #[test]
    fn elements_are_replaced_in_place() {
        let original = sequence(&[&oid(&[1]), &oid(&[2]), &oid(&[3])]);
        let new = oid(&[9, 9]);
        let replaced = replace_elements(&original, &[(1, &new)]).unwrap();
        assert_eq!(replaced, sequence(&[&oid(&[1]), &new, &oid(&[3])]));
        assert!(replace_elements(&original, &[(3, &new)]).is_err());
    }

    #[test]
    fn integers_and_oids_print_as_expected() {
        assert_eq!(unsigned_integer_content(&[0, 0, 0x80]), vec![0, 0x80]);
        assert_eq!(unsigned_integer_content(&[0, 0]), vec![0]);
        assert_eq!(oid_to_string(oid::AD_CA_ISSUERS), "1.3.6.1.5.5.7.48.2");
        assert_eq!(oid_to_string(oid::KEY_USAGE), "2.5.29.15");
    }
}
