//! dns-01 validation (RFC 8555 §8.4): a TXT query for `_acme-challenge.{name}` sent to
//! the configured recursive resolver over UDP, one question, recursion desired.
//!
//! Message building and parsing are pure functions (no I/O), so they can be fuzzed. A
//! truncated answer is refused rather than retried over TCP (challenge records are
//! small); compression pointers are followed with a bound on their number.

use std::net::SocketAddr;
use std::time::Duration;

use super::validation::ValidationError;

/// DNS type TXT.
const TYPE_TXT: u16 = 16;
/// DNS class IN.
const CLASS_IN: u16 = 1;
/// Largest UDP answer read.
const MAX_ANSWER: usize = 4096;

fn failed(detail: impl Into<String>) -> ValidationError {
    ValidationError {
        kind: "dns",
        detail: detail.into(),
    }
}

/// A TXT query for `name` with message id `id`.
pub fn txt_query(id: u16, name: &str) -> Result<Vec<u8>, String> {
    let mut message = Vec::with_capacity(64);
    message.extend_from_slice(&id.to_be_bytes());
    // Flags: a standard query, recursion desired; one question.
    message.extend_from_slice(&[0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    let name = name.trim_end_matches('.');
    if name.len() > 253 {
        return Err("name too long".into());
    }
    for label in name.split('.') {
        let length = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..=63).contains(l))
            .ok_or_else(|| format!("invalid label in {name:?}"))?;
        message.push(length);
        message.extend_from_slice(label.as_bytes());
    }
    message.push(0);
    message.extend_from_slice(&TYPE_TXT.to_be_bytes());
    message.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(message)
}

fn u16_at(message: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *message.get(offset)?,
        *message.get(offset + 1)?,
    ]))
}

/// The offset just past the (possibly compressed) name at `offset`.
fn skip_name(message: &[u8], mut offset: usize) -> Option<usize> {
    loop {
        let length = *message.get(offset)?;
        match length {
            0 => return Some(offset + 1),
            l if l & 0xc0 == 0xc0 => return Some(offset + 2),
            l if l & 0xc0 == 0 => offset += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// Why an answer was not usable.
#[derive(Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// Not an answer to the query (id, flags) or malformed.
    Malformed(&'static str),
    /// The resolver truncated it.
    Truncated,
    /// The resolver answered with this error code (other than NXDOMAIN).
    Rcode(u8),
}

/// The TXT strings of the answer section (each record's strings joined), for the query
/// with id `id`. NXDOMAIN gives an empty list.
pub fn parse_txt_answer(id: u16, message: &[u8]) -> Result<Vec<String>, AnswerError> {
    let malformed = AnswerError::Malformed;
    if u16_at(message, 0) != Some(id) {
        return Err(malformed("answer to another query"));
    }
    let flags = u16_at(message, 2).ok_or(malformed("short header"))?;
    if flags & 0x8000 == 0 {
        return Err(malformed("not a response"));
    }
    if flags & 0x0200 != 0 {
        return Err(AnswerError::Truncated);
    }
    let rcode = u8::try_from(flags & 0x000f).unwrap_or(0);
    if rcode == 3 {
        return Ok(Vec::new());
    }
    if rcode != 0 {
        return Err(AnswerError::Rcode(rcode));
    }
    let questions = u16_at(message, 4).ok_or(malformed("short header"))?;
    let answers = u16_at(message, 6).ok_or(malformed("short header"))?;
    let mut offset = 12;
    for _ in 0..questions {
        offset = skip_name(message, offset).ok_or(malformed("bad question name"))? + 4;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        offset = skip_name(message, offset).ok_or(malformed("bad answer name"))?;
        let kind = u16_at(message, offset).ok_or(malformed("short record"))?;
        let class = u16_at(message, offset + 2).ok_or(malformed("short record"))?;
        let length = usize::from(u16_at(message, offset + 8).ok_or(malformed("short record"))?);
        let data = message
            .get(offset + 10..offset + 10 + length)
            .ok_or(malformed("record data past the end"))?;
        offset += 10 + length;
        if kind != TYPE_TXT || class != CLASS_IN {
            continue;
        }
        let mut text = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let piece = usize::from(data[at]);
            text.extend_from_slice(
                data.get(at + 1..at + 1 + piece)
                    .ok_or(malformed("bad TXT string"))?,
            );
            at += 1 + piece;
        }
        records.push(String::from_utf8_lossy(&text).into_owned());
    }
    Ok(records)
}

/// The TXT records of `name`, asked of `resolver` within `timeout`.
pub async fn txt_records(
    resolver: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<Vec<String>, ValidationError> {
    let mut id_bytes = [0u8; 2];
    aws_lc_rs::rand::fill(&mut id_bytes).map_err(|_| failed("random generator failed"))?;
    let id = u16::from_be_bytes(id_bytes);
    let query = txt_query(id, name).map_err(failed)?;
    let exchange = async {
        let local: SocketAddr = if resolver.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = tokio::net::UdpSocket::bind(local)
            .await
            .map_err(|e| failed(format!("cannot open a DNS socket: {e}")))?;
        socket
            .connect(resolver)
            .await
            .map_err(|e| failed(format!("cannot reach the resolver: {e}")))?;
        socket
            .send(&query)
            .await
            .map_err(|e| failed(format!("DNS query failed: {e}")))?;
        let mut buffer = vec![0u8; MAX_ANSWER];
        loop {
            let received = socket
                .recv(&mut buffer)
                .await
                .map_err(|e| failed(format!("DNS answer failed: {e}")))?;
            match parse_txt_answer(id, &buffer[..received]) {
                // A stray datagram: keep waiting for ours.
                Err(AnswerError::Malformed("answer to another query")) => continue,
                Ok(records) => return Ok(records),
                Err(AnswerError::Truncated) => {
                    return Err(failed(format!("the TXT answer for {name} was truncated")));
                }
                Err(AnswerError::Rcode(code)) => {
                    return Err(failed(format!(
                        "the resolver answered {name} with error code {code}"
                    )));
                }
                Err(AnswerError::Malformed(what)) => {
                    return Err(failed(format!("malformed DNS answer: {what}")));
                }
            }
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| failed(format!("no DNS answer for {name} in time")))?
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An answer to `query` with TXT records `texts` (the name compressed).
    fn answer(query: &[u8], texts: &[&[&str]]) -> Vec<u8> {
        let mut message = query.to_vec();
        message[2] |= 0x80;
        message[6..8].copy_from_slice(&u16::try_from(texts.len()).unwrap().to_be_bytes());
        for strings in texts {
            message.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60]);
            let data: Vec<u8> = strings
                .iter()
                .flat_map(|s| {
                    let mut piece = vec![u8::try_from(s.len()).unwrap()];
                    piece.extend_from_slice(s.as_bytes());
                    piece
                })
                .collect();
            message.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
            message.extend_from_slice(&data);
        }
        message
    }

    #[test]
    fn queries_and_answers_round_trip() {
        let query = txt_query(0x1234, "_acme-challenge.a.example").unwrap();
        assert_eq!(&query[..2], &[0x12, 0x34]);
        let message = answer(&query, &[&["abc", "def"], &["x"]]);
        assert_eq!(
            parse_txt_answer(0x1234, &message).unwrap(),
            vec!["abcdef".to_owned(), "x".to_owned()]
        );
        assert_eq!(
            parse_txt_answer(0x1235, &message),
            Err(AnswerError::Malformed("answer to another query"))
        );
        let mut truncated = message.clone();
        truncated[2] |= 0x02;
        assert_eq!(
            parse_txt_answer(0x1234, &truncated),
            Err(AnswerError::Truncated)
        );
        let mut nxdomain = answer(&query, &[]);
        nxdomain[3] |= 3;
        assert_eq!(parse_txt_answer(0x1234, &nxdomain), Ok(Vec::new()));
        assert!(parse_txt_answer(0x1234, &message[..message.len() - 2]).is_err());
        assert!(txt_query(1, "a..b").is_err());
    }
}
