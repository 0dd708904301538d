//! Challenge validation: http-01 (RFC 8555 §8.3).
//!
//! A validation request goes only to the name being validated: the name is resolved
//! (`localhost` and names under it to the loopback addresses, RFC 6761 §6.3, without
//! asking DNS; others through the system resolver), every resolved address is checked
//! against the address policy and only permitted ones are contacted, on the configured
//! port. Redirects are followed at most [`MAX_REDIRECTS`] times and only to the same
//! name over `http://` on the same port. The whole validation has one time limit, and
//! at most [`MAX_RESPONSE_BYTES`] of a response are read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 3;
/// Most bytes read of a validation response (headers and body).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// An address range, `address/prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `::1/128`, or a bare address (a single host).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an address range like 10.0.0.0/8"))?;
        let most = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => most,
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= most)
                .ok_or_else(|| format!("{text:?}: prefix length must be 0 to {most}"))?,
        };
        Ok(Self { address, prefix })
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, canonical(ip)) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Whether `ip` is refused unless an allowed range holds it: loopback, private,
/// link-local, shared, unspecified, multicast, broadcast and documentation addresses.
pub fn refused_by_default(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let shared = Network {
                address: IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)),
                prefix: 10,
            };
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 0
                || shared.contains(IpAddr::V4(v4))
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00
                || (segments[0] & 0xffc0) == 0xfe80
                || (segments[0] == 0x2001 && segments[1] == 0x0db8)
                || v6 == Ipv6Addr::UNSPECIFIED
        }
    }
}

/// The address policy of validation requests.
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    /// Ranges reachable although refused by default.
    pub allowed: Vec<Network>,
}

impl AddressPolicy {
    /// Whether validation may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !refused_by_default(ip) || self.allowed.iter().any(|n| n.contains(ip))
    }
}

/// Why a validation failed: an ACME error type (without its URN prefix) and a detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// `dns`, `connection`, `incorrectResponse`, `unauthorized`.
    pub kind: &'static str,
    /// What happened, for the client.
    pub detail: String,
}

fn failed(kind: &'static str, detail: impl Into<String>) -> ValidationError {
    ValidationError {
        kind,
        detail: detail.into(),
    }
}

/// Settings of one http-01 validation.
#[derive(Clone, Debug)]
pub struct Http01 {
    /// Port to connect to.
    pub port: u16,
    /// Which addresses may be contacted.
    pub policy: AddressPolicy,
    /// Time limit of the whole validation.
    pub timeout: Duration,
}

impl Http01 {
    /// Fetches `http://{name}:{port}/.well-known/acme-challenge/{token}` and checks the
    /// body (trailing whitespace ignored) is `expected`, the key authorization.
    pub async fn validate(
        &self,
        name: &str,
        token: &str,
        expected: &str,
    ) -> Result<(), ValidationError> {
        match tokio::time::timeout(self.timeout, self.validate_inner(name, token, expected)).await {
            Ok(result) => result,
            Err(_) => Err(failed(
                "connection",
                format!(
                    "validation of {name} did not finish within {} s",
                    self.timeout.as_secs()
                ),
            )),
        }
    }

    async fn validate_inner(
        &self,
        name: &str,
        token: &str,
        expected: &str,
    ) -> Result<(), ValidationError> {
        let addresses = self.resolve(name).await?;
        let mut path = format!("/.well-known/acme-challenge/{token}");
        for _ in 0..=MAX_REDIRECTS {
            let response = self.fetch(name, &addresses, &path).await?;
            match response.status {
                200 => {
                    let body = String::from_utf8_lossy(&response.body);
                    let body = body.trim_end();
                    if body == expected {
                        return Ok(());
                    }
                    return Err(failed(
                        "incorrectResponse",
                        format!(
                            "the key authorization served by {name} does not match (got {} bytes)",
                            body.len()
                        ),
                    ));
                }
                301 | 302 | 303 | 307 | 308 => {
                    let location = response.location.ok_or_else(|| {
                        failed("incorrectResponse", "a redirect without a Location header")
                    })?;
                    path = self.same_origin_path(name, &location)?;
                }
                status => {
                    return Err(failed(
                        "incorrectResponse",
                        format!("{name} answered the challenge request with HTTP {status}"),
                    ));
                }
            }
        }
        Err(failed(
            "incorrectResponse",
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }

    /// The path of a redirect target, which must stay on the name and port.
    fn same_origin_path(&self, name: &str, location: &str) -> Result<String, ValidationError> {
        if location.starts_with('/') && !location.starts_with("//") {
            return Ok(location.to_owned());
        }
        let refused = || {
            failed(
                "incorrectResponse",
                format!(
                    "redirect to {location:?} refused: only http:// redirects to {name} on port {} are followed",
                    self.port
                ),
            )
        };
        let rest = location.strip_prefix("http://").ok_or_else(refused)?;
        let (authority, path) = match rest.find('/') {
            Some(index) => (&rest[..index], &rest[index..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| refused())?),
            None => (authority, 80),
        };
        if !host.eq_ignore_ascii_case(name) || port != self.port {
            return Err(refused());
        }
        Ok(path.to_owned())
    }

    async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, ValidationError> {
        resolve_permitted(name, self.port, &self.policy).await
    }

    async fn fetch(
        &self,
        name: &str,
        addresses: &[IpAddr],
        path: &str,
    ) -> Result<Response, ValidationError> {
        let mut last_error = String::new();
        for address in addresses {
            let target = SocketAddr::new(*address, self.port);
            match TcpStream::connect(target).await {
                Ok(mut stream) => {
                    let literal = match name.parse::<IpAddr>() {
                        Ok(IpAddr::V6(_)) => format!("[{name}]"),
                        _ => name.to_owned(),
                    };
                    let host = if self.port == 80 {
                        literal
                    } else {
                        format!("{literal}:{}", self.port)
                    };
                    let request = format!(
                        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: carimbo-acme\r\n\
                         Accept: */*\r\nConnection: close\r\n\r\n"
                    );
                    stream.write_all(request.as_bytes()).await.map_err(|e| {
                        failed("connection", format!("sending to {target} failed: {e}"))
                    })?;
                    let mut buffer = Vec::new();
                    stream
                        .take(u64::try_from(MAX_RESPONSE_BYTES).unwrap_or(u64::MAX))
                        .read_to_end(&mut buffer)
                        .await
                        .map_err(|e| {
                            failed("connection", format!("reading from {target} failed: {e}"))
                        })?;
                    return parse_response(&buffer);
                }
                Err(error) => last_error = format!("{target}: {error}"),
            }
        }
        Err(failed(
            "connection",
            format!("cannot connect to {name}: {last_error}"),
        ))
    }
}

/// The addresses of `name` that `policy` permits (names under `localhost`: loopback,
/// without DNS); an error if it has none, or none permitted.
pub(crate) async fn resolve_permitted(
    name: &str,
    port: u16,
    policy: &AddressPolicy,
) -> Result<Vec<IpAddr>, ValidationError> {
    let lower = name.to_ascii_lowercase();
    let resolved: Vec<IpAddr> = if let Ok(ip) = lower.parse::<IpAddr>() {
        // An ip identifier (RFC 8738): the address itself.
        vec![ip]
    } else if lower == "localhost" || lower.ends_with(".localhost") {
        vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
    } else {
        tokio::net::lookup_host((lower.as_str(), port))
            .await
            .map_err(|e| failed("dns", format!("cannot resolve {name}: {e}")))?
            .map(|address| address.ip())
            .collect()
    };
    let permitted: Vec<IpAddr> = resolved
        .iter()
        .copied()
        .filter(|ip| policy.permits(*ip))
        .collect();
    if resolved.is_empty() {
        return Err(failed("dns", format!("{name} has no address")));
    }
    if permitted.is_empty() {
        return Err(failed(
            "connection",
            format!("{name} resolves only to addresses validation may not reach"),
        ));
    }
    Ok(permitted)
}

/// A parsed HTTP response.
#[derive(Debug)]
struct Response {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

fn parse_response(bytes: &[u8]) -> Result<Response, ValidationError> {
    let bad = |what: &str| {
        failed(
            "incorrectResponse",
            format!("invalid HTTP response: {what}"),
        )
    };
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| bad("headers not UTF-8"))?;
    let body = &bytes[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not HTTP/1"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("no status code"))?;
    let mut location = None;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("header without a colon"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "location" => location = Some(value.to_owned()),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| bad("bad Content-Length"))?,
                )
            }
            _ => {}
        }
    }
    let body = if chunked {
        decode_chunked(body).ok_or_else(|| bad("bad chunked encoding"))?
    } else if let Some(length) = length {
        body.get(..length)
            .ok_or_else(|| bad("body shorter than its Content-Length"))?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok(Response {
        status,
        location,
        body,
    })
}

fn decode_chunked(mut bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&bytes[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(bytes.get(..size)?);
        bytes = bytes.get(size + 2..)?;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_default_refusals() {
        let loopback = Network::parse("127.0.0.0/8").unwrap();
        assert!(loopback.contains("127.1.2.3".parse().unwrap()));
        assert!(loopback.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!loopback.contains("128.0.0.1".parse().unwrap()));
        assert!(
            Network::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("nonsense").is_err());
        for refused in [
            "127.0.0.1",
            "10.1.1.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(refused_by_default(refused.parse().unwrap()), "{refused}");
        }
        assert!(!refused_by_default("93.184.216.34".parse().unwrap()));
        let policy = AddressPolicy {
            allowed: vec![loopback],
        };
        assert!(policy.permits("127.0.0.1".parse().unwrap()));
        assert!(!policy.permits("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn responses_parse_with_length_or_chunks() {
        let plain = parse_response(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nabc.def\n")
            .unwrap();
        assert_eq!(
            (plain.status, plain.body.as_slice()),
            (200, &b"abc.def\n"[..])
        );
        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\n.def\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, b"abc.def");
        let redirect =
            parse_response(b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        assert_eq!(redirect.location.as_deref(), Some("/x"));
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn redirects_stay_on_the_name_and_port() {
        let http = Http01 {
            port: 5002,
            policy: AddressPolicy::default(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(http.same_origin_path("a.test", "/p").unwrap(), "/p");
        assert_eq!(
            http.same_origin_path("a.test", "http://A.test:5002/q")
                .unwrap(),
            "/q"
        );
        for refused in [
            "//evil.test/p",
            "http://evil.test:5002/p",
            "http://a.test/p",
            "https://a.test:5002/p",
            "http://a.test:5002@evil.test/p",
        ] {
            assert!(
                http.same_origin_path("a.test", refused).is_err(),
                "{refused}"
            );
        }
    }
}
