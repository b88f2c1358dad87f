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
    pub fn parse(input: &[u8]) -> Result<Json, String> {
        if input.len() > MAX_DOCUMENT {
            return Err(format!("document larger than {MAX_DOCUMENT} bytes"));
        }
        let mut p = Parser { s: input, i: 0 };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing characters at {}", p.i));
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

    fn expect(&mut self, lit: &[u8]) -> Result<(), String> {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(format!("unexpected input at {}", self.i))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH}"));
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
                        _ => return Err(format!("expected , or ] at {}", self.i)),
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
                        return Err(format!("expected a key at {}", self.i));
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
                        _ => return Err(format!("expected , or }} at {}", self.i)),
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
                let text =
                    std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                Ok(Json::Number(text.to_owned()))
            }
            _ => Err(format!("unexpected input at {}", self.i)),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        loop {
            let c = self.peek().ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.peek().ok_or("unterminated escape")?;
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
                            let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
                            self.i += 4;
                            let hex = std::str::from_utf8(hex).map_err(|e| e.to_string())?;
                            let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            // Surrogate halves are replaced rather than paired: host names
                            // never contain them.
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(format!("bad escape at {}", self.i)),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| "string is not UTF-8".into())
    }
}

/// Reads a broker registration: the endpoint for `protocol` (`PLAINTEXT`, `SSL`,
/// `SASL_PLAINTEXT`, `SASL_SSL`) if listed, else the legacy `host`/`port` fields.
pub fn parse_broker_registration(data: &[u8], protocol: &str) -> Result<BrokerAddress, String> {
    let doc = Json::parse(data)?;
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
    fn hostile_json_is_an_error_not_a_panic() {
        let deep = "[".repeat(100_000);
        assert!(Json::parse(deep.as_bytes()).is_err());
        let deep_obj = "{\"a\":".repeat(50) + "1" + &"}".repeat(50);
        assert!(Json::parse(deep_obj.as_bytes())
            .unwrap_err()
            .contains("nesting"));
        let huge = format!(r#"{{"host":"h","port":{}}}"#, "9".repeat(5000));
        assert!(parse_broker_registration(huge.as_bytes(), "PLAINTEXT").is_err());
        let big = vec![b' '; MAX_DOCUMENT + 1];
        assert!(Json::parse(&big).is_err());
        for bad in [
            &b""[..],
            b"{",
            b"{\"a\"",
            b"{\"a\":}",
            b"\"\\u12",
            b"\"\\x\"",
            b"[1,]",
            b"nul",
            b"\"\xff\"",
            b"{} x",
            b"{\"port\":70000,\"host\":\"h\"}",
            b"-",
        ] {
            let _ = Json::parse(bad);
            assert!(
                parse_broker_registration(bad, "PLAINTEXT").is_err(),
                "{bad:?}"
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
