//! Checks for the ZooKeeper JSON parser (`grete::zk::Json`) and the broker registration
//! reader built on it.
//!
//! Input: the document. Checks: documents over `MAX_DOCUMENT` are refused; what parses
//! nests no deeper than `MAX_DEPTH` allows, prints back to JSON that parses to the same
//! value; a registration that reads has a non-empty host and a non-zero port.

use grete::zk::{parse_broker_registration, Json, MAX_DEPTH, MAX_DOCUMENT};

/// How deeply `v`'s containers nest (a scalar is 0).
fn depth(v: &Json) -> usize {
    match v {
        Json::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Json::Object(members) => 1 + members.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

fn print_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// JSON text for `v`.
pub fn print(v: &Json, out: &mut String) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(n),
        Json::String(s) => print_string(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                print(item, out);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                print_string(k, out);
                out.push(':');
                print(v, out);
            }
            out.push('}');
        }
    }
}

/// `zk_json`: see the module documentation.
pub fn check_zk_json(data: &[u8]) {
    let parsed = Json::parse(data);
    if data.len() > MAX_DOCUMENT {
        assert!(parsed.is_err(), "a document over the size limit parsed");
    }
    if let Ok(v) = &parsed {
        assert!(
            depth(v) <= MAX_DEPTH + 1,
            "nesting deeper than the limit parsed"
        );
        let mut text = String::new();
        print(v, &mut text);
        // Printing escapes nothing but quotes, backslashes and controls: never longer
        // than six bytes per input byte.
        let again = Json::parse(text.as_bytes()).map_err(|e| e.to_string());
        if text.len() <= MAX_DOCUMENT {
            assert_eq!(
                again.as_ref(),
                Ok(v),
                "printed JSON parses differently: {text}"
            );
        }
    }
    for protocol in ["PLAINTEXT", "SSL"] {
        if let Ok(a) = parse_broker_registration(data, protocol) {
            assert!(
                parsed.is_ok(),
                "a registration read from a document that does not parse"
            );
            assert!(!a.host.is_empty(), "empty host");
            assert_ne!(a.port, 0, "port 0");
        }
    }
}
