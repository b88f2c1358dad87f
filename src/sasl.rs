//! The client side of SASL PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802, RFC 7677).
//!
//! [`SaslClient`] only turns server messages into client messages; the connection carries
//! them in SaslAuthenticate requests (or as raw frames after SaslHandshake v0).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::config::{SaslConfig, SaslMechanism};
use crate::error::Error;
use crate::rng::Rng;

/// Kafka refuses more SCRAM iterations than this; a server asking for more is refused
/// too, so that a hostile server cannot make the client compute for minutes.
pub const MAX_SCRAM_ITERATIONS: u32 = 16_384;

/// Kafka (and the Java client) refuse fewer SCRAM iterations than this; a server asking
/// for fewer is refused too, so that a rogue server cannot obtain a proof that is cheap
/// to brute-force offline.
pub const MIN_SCRAM_ITERATIONS: u32 = 4096;

/// One SASL exchange, client side. Its `Debug` output never shows the password nor
/// values derived from it.
pub struct SaslClient {
    mechanism: SaslMechanism,
    username: String,
    password: String,
    step: Step,
}

impl fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = match self.step {
            Step::Initial { .. } => "Initial",
            Step::ServerFirst { .. } => "ServerFirst",
            Step::ServerFinal { .. } => "ServerFinal",
            Step::PlainSent => "PlainSent",
            Step::Done => "Done",
            Step::Failed => "Failed",
        };
        f.debug_struct("SaslClient")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("step", &step)
            .finish()
    }
}

enum Step {
    Initial {
        nonce: String,
    },
    /// Waiting for the server-first message.
    ServerFirst {
        nonce: String,
        client_first_bare: String,
    },
    /// Waiting for the server-final message.
    ServerFinal {
        server_signature: Vec<u8>,
    },
    /// PLAIN: waiting for the (empty) answer to the single message.
    PlainSent,
    Done,
    /// The exchange failed; nothing more can be sent.
    Failed,
}

impl SaslClient {
    /// A client for `config`, with a SCRAM nonce drawn from `rng`.
    pub fn new(config: &SaslConfig, rng: &mut Rng) -> SaslClient {
        let mut raw = [0u8; 24];
        rng.fill(&mut raw);
        Self::with_nonce(config, &base64_encode(&raw))
    }

    /// A client with a given SCRAM client nonce (for test vectors).
    pub fn with_nonce(config: &SaslConfig, nonce: &str) -> SaslClient {
        SaslClient {
            mechanism: config.mechanism,
            username: config.username.clone(),
            password: config.password.clone(),
            step: Step::Initial {
                nonce: nonce.to_owned(),
            },
        }
    }

    /// The mechanism.
    pub fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// Whether the exchange finished successfully.
    pub fn is_done(&self) -> bool {
        matches!(self.step, Step::Done)
    }

    /// The client's first message.
    pub fn initial_response(&mut self) -> Result<Vec<u8>, Error> {
        let nonce = match &self.step {
            Step::Initial { nonce } => nonce.clone(),
            _ => return Err(Error::Misuse("SASL exchange already started".into())),
        };
        if self.mechanism == SaslMechanism::Plain {
            let mut out = Vec::with_capacity(self.username.len() + self.password.len() + 2);
            out.push(0);
            out.extend_from_slice(self.username.as_bytes());
            out.push(0);
            out.extend_from_slice(self.password.as_bytes());
            self.step = Step::PlainSent;
            return Ok(out);
        }
        let client_first_bare = format!("n={},r={}", saslname(&self.username), nonce);
        let out = format!("n,,{client_first_bare}").into_bytes();
        self.step = Step::ServerFirst {
            nonce,
            client_first_bare,
        };
        Ok(out)
    }

    /// Handles a server message: `Ok(Some(reply))` to send next, `Ok(None)` when the
    /// exchange is complete (and, for SCRAM, the server proved it knows the password).
    pub fn handle_challenge(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match std::mem::replace(&mut self.step, Step::Failed) {
            Step::PlainSent => {
                self.step = Step::Done;
                Ok(None)
            }
            Step::ServerFirst {
                nonce,
                client_first_bare,
            } => {
                let (reply, server_signature) =
                    self.client_final(server, &nonce, &client_first_bare)?;
                self.step = Step::ServerFinal { server_signature };
                Ok(Some(reply))
            }
            Step::ServerFinal { server_signature } => {
                let msg = std::str::from_utf8(server)
                    .map_err(|_| Error::Sasl("server-final message is not UTF-8".into()))?;
                if let Some(e) = msg.strip_prefix("e=") {
                    return Err(Error::Sasl(format!("server refused: {e}")));
                }
                let v = attr(msg, 'v')
                    .ok_or_else(|| Error::Sasl("server-final message has no signature".into()))?;
                let got = base64_decode(v)
                    .ok_or_else(|| Error::Sasl("server signature is not base64".into()))?;
                if !constant_time_eq(&got, &server_signature) {
                    return Err(Error::Sasl(
                        "server signature does not verify: the server does not know the password"
                            .into(),
                    ));
                }
                self.step = Step::Done;
                Ok(None)
            }
            step @ (Step::Initial { .. } | Step::Done | Step::Failed) => {
                // Refused, and the exchange stays where it was: a stray message after
                // success does not undo it.
                self.step = step;
                Err(Error::Misuse("SASL message out of sequence".into()))
            }
        }
    }

    fn client_final(
        &self,
        server: &[u8],
        nonce: &str,
        client_first_bare: &str,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let bad = |what: &str| Error::Sasl(format!("server-first message: {what}"));
        let server_first = std::str::from_utf8(server).map_err(|_| bad("not UTF-8"))?;
        if server_first.starts_with("m=") {
            return Err(bad("mandatory extension not supported"));
        }
        let server_nonce = attr(server_first, 'r').ok_or_else(|| bad("no nonce"))?;
        if !server_nonce.starts_with(nonce) || server_nonce.len() == nonce.len() {
            return Err(bad("nonce does not extend the client's"));
        }
        let salt = attr(server_first, 's')
            .and_then(base64_decode)
            .ok_or_else(|| bad("missing or invalid salt"))?;
        let iterations: u32 = attr(server_first, 'i')
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| bad("missing or invalid iteration count"))?;
        if iterations < MIN_SCRAM_ITERATIONS {
            return Err(bad("iteration count below the minimum of 4096"));
        }
        if iterations > MAX_SCRAM_ITERATIONS {
            return Err(bad("iteration count above the maximum"));
        }
        let alg = self.mechanism;
        let salted = hi(alg, self.password.as_bytes(), &salt, iterations)?;
        let client_key = hmac(alg, &salted, b"Client Key")?;
        let stored_key = hash(alg, &client_key);
        let without_proof = format!("c=biws,r={server_nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = hmac(alg, &stored_key, auth_message.as_bytes())?;
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac(alg, &salted, b"Server Key")?;
        let server_signature = hmac(alg, &server_key, auth_message.as_bytes())?;
        let reply = format!("{without_proof},p={}", base64_encode(&proof)).into_bytes();
        Ok((reply, server_signature))
    }
}

/// Escapes a user name for SCRAM (`=` and `,`).
fn saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The value of attribute `key` in a SCRAM message `k=v,k=v`.
fn attr(msg: &str, key: char) -> Option<&str> {
    msg.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(key) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

fn hmac(alg: SaslMechanism, key: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
    let bad_key = |_| Error::Sasl("invalid HMAC key".into());
    Ok(match alg {
        SaslMechanism::ScramSha512 => {
            let mut m = Hmac::<Sha512>::new_from_slice(key).map_err(bad_key)?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut m = Hmac::<Sha256>::new_from_slice(key).map_err(bad_key)?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    })
}

fn hash(alg: SaslMechanism, data: &[u8]) -> Vec<u8> {
    match alg {
        SaslMechanism::ScramSha512 => Sha512::digest(data).to_vec(),
        _ => Sha256::digest(data).to_vec(),
    }
}

/// RFC 5802's `Hi()`: PBKDF2 with HMAC as the pseudo-random function, one block.
fn hi(alg: SaslMechanism, password: &[u8], salt: &[u8], iterations: u32) -> Result<Vec<u8>, Error> {
    let mut first = Vec::with_capacity(salt.len() + 4);
    first.extend_from_slice(salt);
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(alg, password, &first)?;
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(alg, password, &u)?;
        for (o, x) in out.iter_mut().zip(&u) {
            *o ^= x;
        }
    }
    Ok(out)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding; `None` on anything else.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (ci, chunk) in s.chunks(4).enumerate() {
        let last = ci == s.len() / 4 - 1;
        let mut n = 0u32;
        let mut pad = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' if last && i >= 2 => {
                    pad += 1;
                    0
                }
                _ => return None,
            };
            if pad > 0 && c != b'=' {
                return None;
            }
            n = n << 6 | v as u32;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mechanism: SaslMechanism, user: &str, password: &str) -> SaslConfig {
        SaslConfig {
            mechanism,
            username: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn plain_sends_authzid_user_password() {
        let mut c = SaslClient::new(
            &config(SaslMechanism::Plain, "alice", "pw"),
            &mut Rng::new(1),
        );
        assert_eq!(c.initial_response().unwrap(), b"\0alice\0pw");
        assert_eq!(c.handle_challenge(b"").unwrap(), None);
    }

    #[test]
    fn a_stray_message_after_success_is_refused_and_changes_nothing() {
        let mut c = SaslClient::new(
            &config(SaslMechanism::Plain, "alice", "pw"),
            &mut Rng::new(1),
        );
        c.initial_response().unwrap();
        assert_eq!(c.handle_challenge(b"").unwrap(), None);
        assert!(c.is_done());
        assert!(matches!(c.handle_challenge(b"more"), Err(Error::Misuse(_))));
        assert!(c.is_done(), "a refused stray message undid the exchange");
    }

    const RFC7677_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

    fn rfc7677_client() -> SaslClient {
        SaslClient::with_nonce(
            &config(SaslMechanism::ScramSha256, "user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO",
        )
    }

    #[test]
    fn scram_sha256_matches_rfc7677() {
        let mut c = rfc7677_client();
        assert_eq!(
            c.initial_response().unwrap(),
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        let reply = c
            .handle_challenge(RFC7677_SERVER_FIRST.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(reply).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            c.handle_challenge(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .unwrap(),
            None
        );
        assert!(c.is_done());
    }

    #[test]
    fn scram_rejects_a_bad_server_signature() {
        let mut c = rfc7677_client();
        c.initial_response().unwrap();
        c.handle_challenge(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
        let err = c
            .handle_challenge(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(
            matches!(err, Error::Sasl(ref m) if m.contains("does not verify")),
            "{err}"
        );
        assert!(!c.is_done());
    }

    #[test]
    fn scram_rejects_hostile_server_first_messages() {
        for bad in [
            "r=someone-else,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=!!!,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=999999999",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
            "m=ext,r=rOprNGfwEbeRWgbNEkqOx",
            "\u{0}\u{ff}",
        ] {
            let mut c = rfc7677_client();
            c.initial_response().unwrap();
            assert!(c.handle_challenge(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn scram_refuses_fewer_than_4096_iterations() {
        for i in [1, 2, 1000, 4095] {
            let mut c = rfc7677_client();
            c.initial_response().unwrap();
            let server_first = format!("r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={i}");
            let err = c.handle_challenge(server_first.as_bytes()).unwrap_err();
            assert!(
                matches!(&err, Error::Sasl(m) if m.contains("below the minimum of 4096")),
                "{i}: {err:?}"
            );
            assert!(!c.is_done());
        }
        // 4096 itself is Kafka's default and is accepted.
        let mut c = rfc7677_client();
        c.initial_response().unwrap();
        let reply = c
            .handle_challenge(b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert!(reply.is_some());
    }

    #[test]
    fn sasl_client_debug_redacts_the_password() {
        let secret = "hunter2-do-not-print";
        for mechanism in [
            SaslMechanism::Plain,
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha512,
        ] {
            let mut c = SaslClient::with_nonce(&config(mechanism, "alice", secret), "abc");
            let mut shown = vec![format!("{c:?}"), format!("{c:#?}")];
            c.initial_response().unwrap();
            shown.push(format!("{c:?}"));
            if mechanism != SaslMechanism::Plain {
                c.handle_challenge(b"r=abcdef,s=c2FsdA==,i=4096").unwrap();
                shown.push(format!("{c:#?}"));
            }
            for text in shown {
                assert!(!text.contains(secret), "{text}");
                assert!(text.contains("alice"), "{text}");
            }
        }
    }

    #[test]
    fn scram_sha512_round_trip_against_an_independent_server_computation() {
        // The server side, computed here from the RFC's formulas with the same helpers
        // only for HMAC/hash (checked by the SHA-256 vector above).
        let alg = SaslMechanism::ScramSha512;
        let mut c = SaslClient::with_nonce(&config(alg, "u,=x", "pw"), "abc");
        let first = String::from_utf8(c.initial_response().unwrap()).unwrap();
        assert_eq!(first, "n,,n=u=2C=3Dx,r=abc");
        let server_first = "r=abcdef,s=c2FsdA==,i=4096";
        let reply = String::from_utf8(
            c.handle_challenge(server_first.as_bytes())
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        let salted = hi(alg, b"pw", b"salt", 4096).unwrap();
        let auth = format!("n=u=2C=3Dx,r=abc,{server_first},c=biws,r=abcdef");
        let server_key = hmac(alg, &salted, b"Server Key").unwrap();
        let sig = hmac(alg, &server_key, auth.as_bytes()).unwrap();
        assert!(reply.starts_with("c=biws,r=abcdef,p="));
        let v = format!("v={}", base64_encode(&sig));
        assert_eq!(c.handle_challenge(v.as_bytes()).unwrap(), None);
    }

    #[test]
    fn base64_round_trips_and_rejects_garbage() {
        for n in 0..20u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        for bad in ["Zm8", "Z=m8", "Zm9v=mFy", "Zm8=Zm8=", "Zm*="] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }
}
