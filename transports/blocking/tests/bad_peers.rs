//! grete-blocking against peers that are not (well-behaved) Kafka brokers, all on
//! 127.0.0.1: every case ends in a typed error within the configured timeouts, no panic,
//! no hang.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use grete_blocking::{Bootstrap, BrokerAddress, ClientConfig, Error, KafkaClient};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

fn config(port: u16) -> ClientConfig {
    ClientConfig {
        bootstrap: Bootstrap::Brokers(vec![BrokerAddress::new("127.0.0.1", port)]),
        request_timeout: REQUEST_TIMEOUT,
        connect_timeout: Duration::from_secs(1),
        ..ClientConfig::default()
    }
}

/// Connects and expects an error within the request timeout (plus slack).
fn connect_fails(port: u16) -> Error {
    let start = Instant::now();
    let result = KafkaClient::connect(config(port));
    let took = start.elapsed();
    let err = result.expect_err("connecting to a bad peer must fail");
    assert!(
        took < REQUEST_TIMEOUT + Duration::from_secs(3),
        "took {took:?}: {err:?}"
    );
    err
}

/// A server answering every connection with `respond` (bounded: it stops after 50
/// connections or when the test ends).
fn serve(respond: fn(&mut TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            thread::spawn(move || respond(&mut stream));
        }
    });
    port
}

/// Reads one request frame (size prefix and body), bounded.
fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let n = u32::from_be_bytes(size) as usize;
    if n > 1 << 20 {
        return None;
    }
    let mut body = vec![0u8; n];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

#[test]
fn refused_port() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = connect_fails(port);
    let text = format!("{err:?}");
    assert!(
        text.contains("Refused") || matches!(err, Error::Timeout { .. }),
        "{text}"
    );
}

#[test]
fn non_kafka_server() {
    let port = serve(|s| {
        let _ = read_request(s);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    let err = connect_fails(port);
    // "HTTP" read as a size prefix is 1.2 GB: beyond max_frame_size, or a timeout.
    eprintln!("non-Kafka server: {err}");
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
}

#[test]
fn broker_closes_mid_response() {
    let port = serve(|s| {
        let Some(req) = read_request(s) else { return };
        // Size 100, the correlation id, then only a few bytes before closing.
        let mut out = 100u32.to_be_bytes().to_vec();
        out.extend_from_slice(&req[4..8]);
        out.extend_from_slice(&[0, 0, 0, 1, 0]);
        let _ = s.write_all(&out);
    });
    let err = connect_fails(port);
    eprintln!("closed mid-response: {err}");
    // The client retries the bootstrap broker until the deadline; the reason is kept.
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(format!("{err}").contains("closed"), "{err}");
}

#[test]
fn two_gib_size_prefix() {
    let port = serve(|s| {
        let Some(req) = read_request(s) else { return };
        let mut out = 0x7fff_ffffu32.to_be_bytes().to_vec();
        out.extend_from_slice(&req[4..8]);
        out.extend_from_slice(&[0; 64]);
        let _ = s.write_all(&out);
        // Keep the connection open: the client must give up on its own.
        thread::sleep(Duration::from_secs(6));
    });
    let err = connect_fails(port);
    eprintln!("2 GiB size prefix: {err}");
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
}

#[test]
fn silent_server_times_out() {
    let port = serve(|s| {
        let _ = read_request(s);
        thread::sleep(Duration::from_secs(8));
    });
    let err = connect_fails(port);
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
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
