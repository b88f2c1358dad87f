//! ZooKeeper bootstrap: the operations the core asks a transport to run, and a tiny
//! bounded JSON reader for the broker registrations under `/brokers/ids/N`.
//!
//! Kafka 0.9 registers each broker as
//! `{"jmx_port":-1,"timestamp":"…","endpoints":["PLAINTEXT://host:9092"],"host":"host","version":2,"port":9092}`.
//! The reader accepts any JSON, but refuses documents deeper than [`MAX_DEPTH`] or larger
//! than [`MAX_DOCUMENT`], and keeps numbers as text (a huge number is not an error until
//! it is used as a port).

use crate::config::BrokerAddress;

/// Identifies one ZooKeeper operation the core asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZkOpId(pub u64);

/// A ZooKeeper read. Paths include the connect string's chroot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZkRequest {
    /// List the children of a node.
    GetChildren {
        /// Absolute path.
        path: String,
    },
    /// Read a node's data.
    GetData {
        /// Absolute path.
        path: String,
    },
}

/// The result of a [`ZkRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZkResponse {
    /// Child names (not paths).
    Children(Vec<String>),
    /// Node data.
    Data(Vec<u8>),
}

/// What kind of ZooKeeper failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZkErrorKind {
    /// The node does not exist.
    NoNode,
    /// The ZooKeeper session or connection failed.
    ConnectionLoss,
    /// Anything else.
    Other,
}

/// A ZooKeeper failure, as plain data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct ZkError {
    /// The kind.
    pub kind: ZkErrorKind,
    /// A description.
    pub message: String,
}

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 16;
/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT: usize = 64 * 1024;

/// Why a ZooKeeper JSON document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The document is larger than [`MAX_DOCUMENT`].
    #[error("document larger than {MAX_DOCUMENT} bytes")]
    TooLarge,
    /// Arrays and objects nest deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// Something other than what the grammar allows at this byte offset.
    #[error("unexpected input at byte {0}")]
    Unexpected(usize),
    /// A string or escape runs to the end of the document.
    #[error("unterminated string")]
    UnterminatedString,
    /// An unknown escape, or a `\u` escape that is not four hex digits, at this offset.
    #[error("bad escape at byte {0}")]
    BadEscape(usize),
    /// A string's bytes are not UTF-8.
    #[error("string is not UTF-8")]
    NotUtf8,
    /// More than whitespace follows the value, from this offset.
    #[error("trailing characters at byte {0}")]
    Trailing(usize),
}

/// A parsed JSON value; numbers stay text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, as written.
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, in document order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole document.
    pub fn parse(input: &[u8]) -> Result<Json, JsonError> {
        if input.len() > MAX_DOCUMENT {
            return Err(JsonError::TooLarge);
        }
        let mut p = Parser { s: input, i: 0 };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(JsonError::Trailing(p.i));
        }
        Ok(v)
    }

    /// A member of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer, if it is one that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) => n.parse().ok(),
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, lit: &[u8]) -> Result<(), JsonError> {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(JsonError::Unexpected(self.i))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.ws();
        match self.peek() {
            Some(b'n') => self.expect(b"null").map(|()| Json::Null),
            Some(b't') => self.expect(b"true").map(|()| Json::Bool(true)),
            Some(b'f') => self.expect(b"false").map(|()| Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(JsonError::Unexpected(self.i)),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Json::Object(members));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(JsonError::Unexpected(self.i));
                    }
                    let k = self.string()?;
                    self.ws();
                    self.expect(b":")?;
                    let v = self.value(depth + 1)?;
                    members.push((k, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Object(members));
                        }
                        _ => return Err(JsonError::Unexpected(self.i)),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                {
                    self.i += 1;
                }
                // Only ASCII was taken.
                let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                Ok(Json::Number(text))
            }
            _ => Err(JsonError::Unexpected(self.i)),
        }
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        loop {
            let c = self.peek().ok_or(JsonError::UnterminatedString)?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let at = self.i - 1;
                    let e = self.peek().ok_or(JsonError::UnterminatedString)?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = self
                                .s
                                .get(self.i..self.i + 4)
                                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                                .ok_or(JsonError::BadEscape(at))?;
                            self.i += 4;
                            let code = hex
                                .iter()
                                .fold(0u32, |n, &h| n * 16 + (h as char).to_digit(16).unwrap_or(0));
                            // Surrogate halves are replaced rather than paired: host names
                            // never contain them.
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(JsonError::BadEscape(at)),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| JsonError::NotUtf8)
    }
}

/// Reads a broker registration: the endpoint for `protocol` (`PLAINTEXT`, `SSL`,
/// `SASL_PLAINTEXT`, `SASL_SSL`) if listed, else the legacy `host`/`port` fields.
pub fn parse_broker_registration(data: &[u8], protocol: &str) -> Result<BrokerAddress, String> {
    let doc = Json::parse(data).map_err(|e| e.to_string())?;
    if let Some(Json::Array(endpoints)) = doc.get("endpoints") {
        for e in endpoints.iter().filter_map(Json::as_str) {
            let Some((proto, rest)) = e.split_once("://") else {
                continue;
            };
            if proto.eq_ignore_ascii_case(protocol) {
                if let Ok(mut a) = BrokerAddress::parse(rest) {
                    if let Some(a) = a.pop() {
                        return Ok(a);
                    }
                }
            }
        }
    }
    let host = doc
        .get("host")
        .and_then(Json::as_str)
        .filter(|h| !h.is_empty());
    let port = doc
        .get("port")
        .and_then(Json::as_i64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0);
    match (host, port) {
        (Some(h), Some(p)) => Ok(BrokerAddress::new(h, p)),
        _ => Err(format!(
            "no {protocol} endpoint and no host/port in the registration"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KAFKA_09: &str = r#"{"jmx_port":-1,"timestamp":"1732150000000","endpoints":["PLAINTEXT://kafka-1:9092","SSL://kafka-1:9093"],"host":"kafka-1","version":2,"port":9092}"#;

    #[test]
    fn reads_kafka_09_registrations() {
        let a = parse_broker_registration(KAFKA_09.as_bytes(), "PLAINTEXT").unwrap();
        assert_eq!(a, BrokerAddress::new("kafka-1", 9092));
        let a = parse_broker_registration(KAFKA_09.as_bytes(), "SSL").unwrap();
        assert_eq!(a, BrokerAddress::new("kafka-1", 9093));
        // A listener only in endpoints (host null, as with SSL-only brokers).
        let ssl_only = r#"{"endpoints":["SSL://h:9093"],"host":null,"port":-1,"version":2}"#;
        assert_eq!(
            parse_broker_registration(ssl_only.as_bytes(), "SSL").unwrap(),
            BrokerAddress::new("h", 9093)
        );
        assert!(parse_broker_registration(ssl_only.as_bytes(), "PLAINTEXT").is_err());
        let old = r#"{ "host" : "h\u0031", "port" : 9092, "version": 1 }"#;
        assert_eq!(
            parse_broker_registration(old.as_bytes(), "PLAINTEXT").unwrap(),
            BrokerAddress::new("h1", 9092)
        );
    }

    #[test]
    fn deep_nesting_is_refused_by_the_depth_check() {
        // Small documents, far under the size limit: only the depth check can refuse them.
        let nested = |levels: usize| "[".repeat(levels) + &"]".repeat(levels);
        let at_limit = nested(MAX_DEPTH + 1);
        assert!(at_limit.len() < MAX_DOCUMENT);
        assert!(Json::parse(at_limit.as_bytes()).is_ok());
        let over = nested(MAX_DEPTH + 2);
        assert_eq!(Json::parse(over.as_bytes()), Err(JsonError::TooDeep));
        // Unclosed, the depth check still comes first.
        let open = "[".repeat(MAX_DEPTH + 2);
        assert_eq!(Json::parse(open.as_bytes()), Err(JsonError::TooDeep));
        let deep_obj = "{\"a\":".repeat(50) + "1" + &"}".repeat(50);
        assert_eq!(Json::parse(deep_obj.as_bytes()), Err(JsonError::TooDeep));
        assert_eq!(
            parse_broker_registration(deep_obj.as_bytes(), "PLAINTEXT"),
            Err(format!("nesting deeper than {MAX_DEPTH}"))
        );
    }

    #[test]
    fn hostile_json_is_a_typed_error() {
        // Over the size limit: refused before parsing (whatever it holds).
        let big = vec![b' '; MAX_DOCUMENT + 1];
        assert_eq!(Json::parse(&big), Err(JsonError::TooLarge));
        let deep = "[".repeat(100_000);
        assert_eq!(Json::parse(deep.as_bytes()), Err(JsonError::TooLarge));
        let huge = format!(r#"{{"host":"h","port":{}}}"#, "9".repeat(5000));
        assert!(Json::parse(huge.as_bytes()).is_ok());
        assert_eq!(
            parse_broker_registration(huge.as_bytes(), "PLAINTEXT"),
            Err("no PLAINTEXT endpoint and no host/port in the registration".into())
        );
        for (bad, error) in [
            (&b""[..], JsonError::Unexpected(0)),
            (b"{", JsonError::Unexpected(1)),
            (b"{\"a\"", JsonError::Unexpected(4)),
            (b"{\"a\":}", JsonError::Unexpected(5)),
            (b"{1:2}", JsonError::Unexpected(1)),
            (b"[1 2]", JsonError::Unexpected(3)),
            (b"\"\\u12", JsonError::BadEscape(1)),
            (b"\"\\u12g4\"", JsonError::BadEscape(1)),
            (b"\"\\x\"", JsonError::BadEscape(1)),
            (b"\"abc", JsonError::UnterminatedString),
            (b"\"\\", JsonError::UnterminatedString),
            (b"[1,]", JsonError::Unexpected(3)),
            (b"nul", JsonError::Unexpected(0)),
            (b"\"\xff\"", JsonError::NotUtf8),
            (b"{} x", JsonError::Trailing(3)),
        ] {
            assert_eq!(Json::parse(bad), Err(error.clone()), "{bad:?}");
            assert_eq!(
                parse_broker_registration(bad, "PLAINTEXT"),
                Err(error.to_string()),
                "{bad:?}"
            );
        }
        // Documents that parse but are no registration.
        for doc in [
            &b"{\"port\":70000,\"host\":\"h\"}"[..],
            b"-",
            b"{\"host\":\"\",\"port\":1}",
        ] {
            assert!(Json::parse(doc).is_ok(), "{doc:?}");
            assert_eq!(
                parse_broker_registration(doc, "PLAINTEXT"),
                Err("no PLAINTEXT endpoint and no host/port in the registration".into()),
                "{doc:?}"
            );
        }
    }

    quickcheck::quickcheck! {
        fn never_panics_on_arbitrary_bytes(data: Vec<u8>) -> bool {
            let _ = parse_broker_registration(&data, "PLAINTEXT");
            true
        }
    }
}
