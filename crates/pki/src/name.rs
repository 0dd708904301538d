//! Distinguished names: an ordered list of single-valued RDNs with the few attribute
//! types a CA needs, encoded exactly (UTF8String, except countryName as
//! PrintableString), so that a subject written once appears byte-for-byte as the
//! issuer of every certificate below it.

use std::fmt;

use crate::PkiError;
use crate::der::{self, Reader, TAG_PRINTABLE_STRING, TAG_SEQUENCE, TAG_SET, TAG_UTF8_STRING, oid};

/// An attribute type allowed in Carimbo names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DnAttribute {
    /// commonName (2.5.4.3), `CN`, at most 64 characters.
    CommonName,
    /// organizationName (2.5.4.10), `O`, at most 64 characters.
    Organization,
    /// organizationalUnitName (2.5.4.11), `OU`, at most 64 characters.
    OrganizationalUnit,
    /// countryName (2.5.4.6), `C`: two upper-case letters (ISO 3166), PrintableString.
    Country,
    /// stateOrProvinceName (2.5.4.8), `ST`, at most 128 characters.
    State,
    /// localityName (2.5.4.7), `L`, at most 128 characters.
    Locality,
}

impl DnAttribute {
    const ALL: [DnAttribute; 6] = [
        Self::CommonName,
        Self::Organization,
        Self::OrganizationalUnit,
        Self::Country,
        Self::State,
        Self::Locality,
    ];

    /// The RFC 4514 short name (`CN`, `O`, ...).
    pub fn short_name(self) -> &'static str {
        match self {
            Self::CommonName => "CN",
            Self::Organization => "O",
            Self::OrganizationalUnit => "OU",
            Self::Country => "C",
            Self::State => "ST",
            Self::Locality => "L",
        }
    }

    pub(crate) fn oid(self) -> &'static [u8] {
        match self {
            Self::CommonName => oid::COMMON_NAME,
            Self::Organization => oid::ORGANIZATION,
            Self::OrganizationalUnit => oid::ORGANIZATIONAL_UNIT,
            Self::Country => oid::COUNTRY,
            Self::State => oid::STATE,
            Self::Locality => oid::LOCALITY,
        }
    }

    fn from_oid(content: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.oid() == content)
    }

    /// Upper bound on the value length in characters (RFC 5280 Appendix A `ub-*`).
    fn max_length(self) -> usize {
        match self {
            Self::CommonName | Self::Organization | Self::OrganizationalUnit => 64,
            Self::Country => 2,
            Self::State | Self::Locality => 128,
        }
    }
}

/// How a value is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum StringKind {
    Utf8,
    Printable,
}

impl StringKind {
    fn tag(self) -> u8 {
        match self {
            Self::Utf8 => TAG_UTF8_STRING,
            Self::Printable => TAG_PRINTABLE_STRING,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Attribute {
    attribute: DnAttribute,
    value: String,
    kind: StringKind,
}

/// An X.501 `Name`: ordered attributes, one per RDN, as they will be encoded.
///
/// Built with [`DistinguishedName::push`] (values as UTF8String, `C` as
/// PrintableString) or read with [`DistinguishedName::from_der`], which keeps the
/// string types it finds so that [`DistinguishedName::to_der`] gives back the same
/// bytes. `Display` gives the RFC 4514 string (last RDN first).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DistinguishedName {
    attributes: Vec<Attribute>,
}

fn is_printable_string(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c))
}

fn check_value(attribute: DnAttribute, value: &str, kind: StringKind) -> Result<(), String> {
    let name = attribute.short_name();
    if value.is_empty() {
        return Err(format!("{name} is empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{name} contains control characters"));
    }
    if value.trim() != value {
        return Err(format!("{name} has leading or trailing spaces"));
    }
    let length = value.chars().count();
    if length > attribute.max_length() {
        return Err(format!(
            "{name} is {length} characters long; at most {} allowed (RFC 5280 Appendix A)",
            attribute.max_length()
        ));
    }
    if attribute == DnAttribute::Country && kind != StringKind::Printable {
        return Err("C must be a PrintableString (RFC 5280 Appendix A)".into());
    }
    if kind == StringKind::Printable && !is_printable_string(value) {
        return Err(format!("{name} {value:?} is not a PrintableString"));
    }
    if attribute == DnAttribute::Country
        && (length != 2 || !value.chars().all(|c| c.is_ascii_uppercase()))
    {
        return Err(format!(
            "C {value:?} is not a two-letter upper-case ISO 3166 code"
        ));
    }
    Ok(())
}

impl DistinguishedName {
    /// An empty name.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `attribute = value` as a new RDN. Values are UTF8String, except
    /// [`DnAttribute::Country`], which must be two upper-case letters and is encoded
    /// as PrintableString. Refuses empty values, control characters, leading or
    /// trailing spaces and values over the RFC 5280 upper bounds.
    pub fn push(&mut self, attribute: DnAttribute, value: &str) -> Result<(), PkiError> {
        let kind = if attribute == DnAttribute::Country {
            StringKind::Printable
        } else {
            StringKind::Utf8
        };
        check_value(attribute, value, kind).map_err(PkiError::InvalidTemplate)?;
        self.attributes.push(Attribute {
            attribute,
            value: value.to_owned(),
            kind,
        });
        Ok(())
    }

    /// Reads a DER `Name`. Accepts single-valued RDNs of the [`DnAttribute`] types in
    /// UTF8String or PrintableString; anything else is refused, so that
    /// `to_der(from_der(x)) == x` always holds.
    pub fn from_der(name_der: &[u8]) -> Result<Self, PkiError> {
        let bad = |why: String| PkiError::Parse(format!("name: {why}"));
        let name = der::parse_single(name_der, TAG_SEQUENCE).map_err(bad)?;
        let mut rdns = Reader::new(name.content);
        let mut result = Self::new();
        while !rdns.is_empty() {
            let rdn = rdns.read(TAG_SET).map_err(bad)?;
            let mut members = Reader::new(rdn.content);
            let pair = members.read(TAG_SEQUENCE).map_err(bad)?;
            if !members.is_empty() {
                return Err(bad("multi-valued RDNs are not supported".into()));
            }
            let mut fields = Reader::new(pair.content);
            let type_oid = fields.read(der::TAG_OID).map_err(bad)?;
            let attribute = DnAttribute::from_oid(type_oid.content).ok_or_else(|| {
                bad(format!(
                    "attribute {} is not supported",
                    der::oid_to_string(type_oid.content)
                ))
            })?;
            let value = fields.read_any().map_err(bad)?;
            if !fields.is_empty() {
                return Err(bad("trailing bytes in an attribute".into()));
            }
            let kind = match value.tag {
                TAG_UTF8_STRING => StringKind::Utf8,
                TAG_PRINTABLE_STRING => StringKind::Printable,
                other => {
                    return Err(bad(format!(
                        "{} uses string tag {other:#04x}; only UTF8String and PrintableString are supported",
                        attribute.short_name()
                    )));
                }
            };
            let text = std::str::from_utf8(value.content)
                .map_err(|_| bad(format!("{} is not valid UTF-8", attribute.short_name())))?;
            check_value(attribute, text, kind).map_err(bad)?;
            result.attributes.push(Attribute {
                attribute,
                value: text.to_owned(),
                kind,
            });
        }
        if result.to_der() != name_der {
            return Err(bad("does not re-encode to the same bytes".into()));
        }
        Ok(result)
    }

    /// The DER `Name`.
    pub fn to_der(&self) -> Vec<u8> {
        let mut rdns = Vec::new();
        for attribute in &self.attributes {
            let pair = der::sequence(&[
                &der::oid(attribute.attribute.oid()),
                &der::tlv(attribute.kind.tag(), attribute.value.as_bytes()),
            ]);
            rdns.extend_from_slice(&der::tlv(TAG_SET, &pair));
        }
        der::tlv(TAG_SEQUENCE, &rdns)
    }

    /// The first common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.attribute == DnAttribute::CommonName)
            .map(|a| a.value.as_str())
    }

    /// Whether the name has no attributes.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// The attributes in encoding order.
    pub fn iter(&self) -> impl Iterator<Item = (DnAttribute, &str)> {
        self.attributes
            .iter()
            .map(|a| (a.attribute, a.value.as_str()))
    }

    /// The same name as rcgen models it, when rcgen can encode it byte-for-byte (no
    /// attribute type repeated); `None` otherwise.
    pub(crate) fn to_rcgen(&self) -> Option<rcgen::DistinguishedName> {
        let mut name = rcgen::DistinguishedName::new();
        for (index, attribute) in self.attributes.iter().enumerate() {
            if self.attributes[..index]
                .iter()
                .any(|a| a.attribute == attribute.attribute)
            {
                return None;
            }
            let kind = match attribute.attribute {
                DnAttribute::CommonName => rcgen::DnType::CommonName,
                DnAttribute::Organization => rcgen::DnType::OrganizationName,
                DnAttribute::OrganizationalUnit => rcgen::DnType::OrganizationalUnitName,
                DnAttribute::Country => rcgen::DnType::CountryName,
                DnAttribute::State => rcgen::DnType::StateOrProvinceName,
                DnAttribute::Locality => rcgen::DnType::LocalityName,
            };
            let value = match attribute.kind {
                StringKind::Utf8 => rcgen::DnValue::Utf8String(attribute.value.clone()),
                StringKind::Printable => rcgen::DnValue::PrintableString(
                    rcgen::string::PrintableString::try_from(attribute.value.as_str()).ok()?,
                ),
            };
            name.push(kind, value);
        }
        Some(name)
    }
}

impl fmt::Display for DistinguishedName {
    /// RFC 4514: RDNs in reverse order, separated by commas, special characters escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, attribute) in self.attributes.iter().rev().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}=", attribute.attribute.short_name())?;
            let last = attribute.value.chars().count().saturating_sub(1);
            for (position, c) in attribute.value.chars().enumerate() {
                let escape = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
                    || (position == 0 && (c == '#' || c == ' '))
                    || (position == last && c == ' ');
                if escape {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DistinguishedName {
        let mut name = DistinguishedName::new();
        name.push(DnAttribute::Country, "BR").unwrap();
        name.push(DnAttribute::Organization, "Carimbo, Ltda")
            .unwrap();
        name.push(DnAttribute::OrganizationalUnit, "PKI").unwrap();
        name.push(DnAttribute::OrganizationalUnit, "Raíz").unwrap();
        name.push(DnAttribute::CommonName, "Carimbo Root CA R1")
            .unwrap();
        name
    }

    #[test]
    fn names_round_trip_through_der_exactly() {
        let name = sample();
        let der = name.to_der();
        let parsed = DistinguishedName::from_der(&der).unwrap();
        assert_eq!(parsed, name);
        assert_eq!(parsed.to_der(), der);
        assert_eq!(name.common_name(), Some("Carimbo Root CA R1"));
        // C is a PrintableString, the rest UTF8String.
        assert!(der.windows(5).any(|w| w == [0x55, 0x04, 0x06, 0x13, 0x02]));
        assert!(der.windows(4).any(|w| w == [0x55, 0x04, 0x03, 0x0c]));
    }

    #[test]
    fn display_is_rfc4514() {
        assert_eq!(
            sample().to_string(),
            "CN=Carimbo Root CA R1,OU=Raíz,OU=PKI,O=Carimbo\\, Ltda,C=BR"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let mut name = DistinguishedName::new();
        assert!(name.push(DnAttribute::Country, "Brazil").is_err());
        assert!(name.push(DnAttribute::Country, "br").is_err());
        assert!(name.push(DnAttribute::CommonName, "").is_err());
        assert!(name.push(DnAttribute::CommonName, " padded").is_err());
        assert!(name.push(DnAttribute::CommonName, "a\nb").is_err());
        assert!(name.push(DnAttribute::CommonName, &"x".repeat(65)).is_err());
        assert!(name.push(DnAttribute::Locality, &"x".repeat(128)).is_ok());
    }

    #[test]
    fn unsupported_names_are_refused_on_parse() {
        // emailAddress (1.2.840.113549.1.9.1) as IA5String.
        let pair = der::sequence(&[
            &der::oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]),
            &der::tlv(0x16, b"a@b"),
        ]);
        let name = der::tlv(TAG_SEQUENCE, &der::tlv(TAG_SET, &pair));
        assert!(DistinguishedName::from_der(&name).is_err());
        assert!(DistinguishedName::from_der(&[0x30, 0x01]).is_err());
    }

    #[test]
    fn rcgen_form_only_without_repeated_types() {
        assert!(sample().to_rcgen().is_none());
        let mut name = DistinguishedName::new();
        name.push(DnAttribute::CommonName, "x").unwrap();
        assert!(name.to_rcgen().is_some());
    }
}
