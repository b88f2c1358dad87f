//! Helpers shared by the integration tests: finding the brokers that `scripts/test`
//! started, and a minimal blocking wire client (a plain socket plus the codec) for tests
//! that exercise the codec against real brokers without the client state machines.
#![allow(dead_code)]
// A test may read the clock (clippy.toml forbids it in the core).
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grete::protocol::frame::FrameDecoder;
use grete::protocol::header::{decode_response, encode_request};
use grete::protocol::messages::Request;
use grete::protocol::DecodeError;

/// The broker address in environment variable `var`, or `None` (and a note) when it is not
/// set. With `GRETE_REQUIRE_BROKERS=1`, as `scripts/test` sets, a missing broker fails the
/// test instead of skipping it.
pub fn broker(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v.split(',').next().unwrap_or_default().to_owned()),
        _ => {
            if std::env::var("GRETE_REQUIRE_BROKERS").as_deref() == Ok("1") {
                panic!("{var} is not set but GRETE_REQUIRE_BROKERS=1");
            }
            eprintln!("skipped: {var} is not set (run scripts/test to start the brokers)");
            None
        }
    }
}

/// A topic name no earlier run used.
pub fn unique_topic(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Why a wire call failed.
#[derive(Debug)]
pub enum WireError {
    Io(std::io::Error),
    Closed,
    Decode(DecodeError),
}

/// One blocking connection speaking the codec, one request at a time.
pub struct Wire {
    stream: TcpStream,
    frames: FrameDecoder,
    correlation_id: i32,
}

impl Wire {
    pub fn connect(addr: &str) -> Wire {
        let sock = addr.parse().expect("broker address");
        let stream = TcpStream::connect_timeout(&sock, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        Wire {
            stream,
            frames: FrameDecoder::new(64 << 20),
            correlation_id: 0,
        }
    }

    /// Changes how long a read may wait before failing with `WouldBlock`/`TimedOut`.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    /// Sends `request` in `version` and returns the raw response frame.
    pub fn call_raw<R: Request>(&mut self, version: i16, request: &R) -> Result<Bytes, WireError> {
        self.correlation_id += 1;
        let mut buf = Vec::new();
        encode_request(
            &mut buf,
            version,
            self.correlation_id,
            Some("grete-test"),
            request,
        )
        .expect("encode request");
        self.stream.write_all(&buf).map_err(WireError::Io)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some(frame) = self.frames.poll_frame().map_err(WireError::Decode)? {
                let corr = i32::from_be_bytes(frame[..4].try_into().unwrap());
                assert_eq!(corr, self.correlation_id, "correlation id");
                return Ok(frame);
            }
            assert!(Instant::now() < deadline, "no response within 30 s");
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(WireError::Closed),
                Ok(n) => self.frames.handle_data(&chunk[..n]),
                Err(e) => return Err(WireError::Io(e)),
            }
        }
    }

    /// Sends `request` in `version` and decodes the response.
    pub fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, WireError> {
        let frame = self.call_raw(version, request)?;
        let (_, body) = decode_response::<R>(frame, version).map_err(WireError::Decode)?;
        Ok(body)
    }
}

/// Retries `f` every 200 ms until it returns `Some`, for at most `secs` seconds.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
