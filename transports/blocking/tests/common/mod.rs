//! Helpers shared by the blocking transport's integration tests.

#![allow(dead_code)]

pub mod adapters;
pub mod mock;
#[path = "../../../testsupport/producing.rs"]
pub mod producing;
#[path = "../../../testsupport/readback.rs"]
pub mod readback;

/// The sockets of this machine connected to 127.0.0.1:`port` that a process still holds
/// (from `/proc/net/tcp`: a closed socket still finishing its TCP close has no inode). A
/// connection's reader and writer threads each hold its socket, so when the count drops
/// they have ended.
pub fn open_sockets_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp (Linux)");
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 9 && fields[2] == remote && fields[9] != "0"
        })
        .count()
}

/// The value of `var`, or `None` (the test skips) when it is unset; a failure instead
/// when `GRETE_REQUIRE_BROKERS=1`.
pub fn env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("GRETE_REQUIRE_BROKERS").as_deref() == Ok("1") {
                panic!("{var} is not set but GRETE_REQUIRE_BROKERS=1");
            }
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}
