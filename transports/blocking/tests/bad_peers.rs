//! grete-blocking against peers that are not (well-behaved) Kafka brokers, all on
//! 127.0.0.1: every case ends in one typed error within the configured timeouts, no panic,
//! no hang. Each bad peer is met with the 0.9 configuration (no ApiVersions) and with a
//! modern one (ApiVersions first).

mod common;
use common::{fake_server, is_protocol, is_timeout_naming, open_sockets_to, read_request};

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use grete_blocking::{
    Bootstrap, BrokerAddress, BrokerVersion, ClientConfig, Error, KafkaClient, TransportErrorKind,
};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The 0.9 configuration: requests go out at once, without ApiVersions.
fn config(port: u16) -> ClientConfig {
    ClientConfig {
        bootstrap: Bootstrap::Brokers(vec![BrokerAddress::new("127.0.0.1", port)]),
        request_timeout: REQUEST_TIMEOUT,
        connect_timeout: Duration::from_secs(1),
        ..ClientConfig::default()
    }
}

/// A modern configuration: every connection starts with ApiVersions.
fn modern(port: u16) -> ClientConfig {
    ClientConfig {
        broker_version: BrokerVersion::parse("2.8").unwrap(),
        ..config(port)
    }
}

/// Both configurations, named.
fn both(port: u16) -> [(&'static str, ClientConfig); 2] {
    [("0.9", config(port)), ("modern", modern(port))]
}

/// Connects and expects an error. The bound on the time is only a safety net against a
/// hang, generous for a slow machine; the test is about which error comes.
fn connect_fails(config: ClientConfig) -> Error {
    let limit = config.request_timeout + config.connect_timeout + Duration::from_secs(20);
    let start = Instant::now();
    let result = KafkaClient::connect(config);
    let took = start.elapsed();
    let err = result.expect_err("connecting to a bad peer must fail");
    assert!(took < limit, "took {took:?}: {err:?}");
    err
}

/// Waits (polling, at most `limit`) until no socket to `port` is held any more.
fn released(port: u16, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while open_sockets_to(port) > 0 {
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
    true
}

#[test]
fn refused_port() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for (name, config) in both(port) {
        let err = connect_fails(config);
        assert!(
            is_timeout_naming(&err, TransportErrorKind::Refused),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn non_kafka_server() {
    let port = fake_server(|mut s| {
        let _ = read_request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    for (name, config) in both(port) {
        let err = connect_fails(config);
        // "HTTP" read as a size prefix is 1.2 GB: beyond max_frame_size.
        assert!(is_protocol(&err, ""), "{name}: {err:?}");
    }
}

#[test]
fn broker_closes_mid_response() {
    let port = fake_server(|mut s| {
        let Some(req) = read_request(&mut s) else {
            return;
        };
        // Size 100, the correlation id, then only a few bytes before closing.
        let mut out = 100u32.to_be_bytes().to_vec();
        out.extend_from_slice(&req[4..8]);
        out.extend_from_slice(&[0, 0, 0, 1, 0]);
        let _ = s.write_all(&out);
    });
    for (name, config) in both(port) {
        let err = connect_fails(config);
        // The client retries the bootstrap broker until the deadline. The timeout names the
        // request in flight at the deadline or, if none was, the last connection error.
        assert!(
            matches!(&err, Error::Timeout { what }
                if !what.contains("last error") || what.contains("Closed")),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn two_gib_size_prefix() {
    let port = fake_server(|mut s| {
        let Some(req) = read_request(&mut s) else {
            return;
        };
        let mut out = 0x7fff_ffffu32.to_be_bytes().to_vec();
        out.extend_from_slice(&req[4..8]);
        out.extend_from_slice(&[0; 64]);
        let _ = s.write_all(&out);
        // Keep the connection open: the client must give up on its own.
        thread::sleep(Duration::from_secs(6));
    });
    for (name, config) in both(port) {
        let err = connect_fails(config);
        assert!(is_protocol(&err, "2147483647 bytes"), "{name}: {err:?}");
    }
}

#[test]
fn silent_server_times_out() {
    let port = fake_server(|mut s| {
        let _ = read_request(&mut s);
        thread::sleep(Duration::from_secs(8));
    });
    for (name, config) in both(port) {
        let err = connect_fails(config);
        assert!(matches!(err, Error::Timeout { .. }), "{name}: {err:?}");
    }
}

/// Issue #6 item 6: a TLS peer that trickles handshake bytes, each before the socket's
/// read timeout, for longer than the connect timeout. The handshake must give up at the
/// connect timeout as a whole (before, each read had its own timeout and the connection
/// thread stayed for as long as the peer kept trickling).
#[test]
fn slow_loris_tls_handshake_gives_up_at_the_connect_timeout() {
    // Trickles for 40 s: far beyond the connect timeout (1 s) plus any slack.
    let port = fake_server(|mut s| {
        let mut hello = [0u8; 512];
        let _ = s.read(&mut hello);
        // A handshake record announcing 16 KiB, then its body a byte at a time.
        if s.write_all(&[0x16, 0x03, 0x03, 0x40, 0x00]).is_err() {
            return;
        }
        for _ in 0..200 {
            thread::sleep(Duration::from_millis(200));
            if s.write_all(&[0]).is_err() {
                return;
            }
        }
    });
    for (name, mut config) in both(port) {
        config.tls = Some(grete_blocking::TlsConfig {
            verify: false,
            ..grete_blocking::TlsConfig::default()
        });
        let err = connect_fails(config);
        assert!(
            is_timeout_naming(&err, TransportErrorKind::ConnectTimeout),
            "{name}: {err:?}"
        );
        // The connection thread gave up too: its socket is closed long before the peer
        // stops trickling.
        assert!(
            released(port, Duration::from_secs(15)),
            "{name}: the handshake is still running"
        );
    }
}

#[test]
fn unresolvable_host() {
    let config = ClientConfig {
        bootstrap: Bootstrap::Brokers(vec![BrokerAddress::new("no-such-host.invalid", 9092)]),
        ..config(9092)
    };
    let start = Instant::now();
    let err = KafkaClient::connect(config).expect_err("unresolvable");
    assert!(start.elapsed() < REQUEST_TIMEOUT + Duration::from_secs(10));
    eprintln!("unresolvable: {err}");
    assert!(format!("{err:?}").contains("Resolve"), "{err:?}");
}

fn tls(ca: Option<&std::path::Path>, cert: Option<&std::path::Path>) -> ClientConfig {
    ClientConfig {
        tls: Some(grete_blocking::TlsConfig {
            ca_file: ca.map(Into::into),
            client_cert_file: cert.map(Into::into),
            client_key_file: None,
            verify: true,
            server_name: None,
        }),
        ..config(9)
    }
}

/// Unusable TLS files are configuration errors, reported by `connect` before connecting.
fn tls_kind(err: &Error) -> bool {
    matches!(err, Error::Config(m) if m.starts_with("TLS"))
}

#[test]
fn tls_configuration_errors_are_reported_before_connecting() {
    let dir = std::env::temp_dir().join(format!("grete-blocking-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.pem");
    let err = KafkaClient::connect(tls(Some(&missing), None)).expect_err("missing CA file");
    assert!(tls_kind(&err), "{err:?}");
    assert!(format!("{err}").contains("missing.pem"), "{err}");

    let junk = dir.join("junk.pem");
    std::fs::write(&junk, b"not a certificate\n").unwrap();
    let err = KafkaClient::connect(tls(Some(&junk), None)).expect_err("no certificate");
    assert!(tls_kind(&err), "{err:?}");

    let err = KafkaClient::connect(tls(Some(&junk), Some(&junk))).expect_err("cert without key");
    assert!(tls_kind(&err), "{err:?}");
    assert!(format!("{err}").contains("client_key_file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
