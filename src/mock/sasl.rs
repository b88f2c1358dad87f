//! The server side of SASL in the mock: PLAIN (RFC 4616) and SCRAM-SHA-256/512
//! (RFC 5802, RFC 7677), written independently of the client in `crate::sasl` so that a
//! mistake in one is not mirrored by the other.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::{MockConfig, SplitMix};

/// The iteration count the mock asks SCRAM clients for (Kafka's minimum).
pub(super) const SCRAM_ITERATIONS: u32 = 4096;

/// One authentication exchange on a connection, server side. Its `Debug` output shows
/// the mechanism and the step, never the password it holds.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Exchange {
    mechanism: String,
    step: Step,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let step = match self.step {
            Step::First => "First",
            Step::Final { .. } => "Final",
        };
        f.debug_struct("Exchange")
            .field("mechanism", &self.mechanism)
            .field("step", &step)
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Step {
    /// Waiting for the client's first (for PLAIN: only) message.
    First,
    /// SCRAM: server-first sent, waiting for client-final.
    Final {
        password: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        salt: Vec<u8>,
        gs2_header: String,
    },
}

/// What a client message led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Send this challenge and wait for the next message.
    Continue(Vec<u8>),
    /// Authenticated; send this last message (empty for PLAIN).
    Done(Vec<u8>),
    /// Authentication failed.
    Failed,
}

impl Exchange {
    pub(super) fn new(mechanism: &str) -> Exchange {
        Exchange {
            mechanism: mechanism.to_owned(),
            step: Step::First,
        }
    }

    /// Handles one client message.
    pub(super) fn step(&mut self, cfg: &MockConfig, rng: &mut SplitMix, msg: &[u8]) -> Outcome {
        let Some(sasl) = &cfg.sasl else {
            return Outcome::Failed;
        };
        let password_of = |user: &str| {
            sasl.users
                .iter()
                .find(|(u, _)| u == user)
                .map(|(_, p)| p.clone())
        };
        match (&self.step, self.mechanism.as_str()) {
            (Step::First, "PLAIN") => match plain(msg) {
                Some((user, password)) if password_of(user).as_deref() == Some(password) => {
                    Outcome::Done(Vec::new())
                }
                _ => Outcome::Failed,
            },
            (Step::First, "SCRAM-SHA-256" | "SCRAM-SHA-512") => {
                let Some((gs2_header, bare, user, client_nonce)) = scram_client_first(msg) else {
                    return Outcome::Failed;
                };
                // An unknown user still gets a challenge (no user enumeration); the
                // proof then cannot match.
                let password = password_of(&user).unwrap_or_default();
                let mut raw = [0u8; 18];
                let mut salt = vec![0u8; 16];
                for b in raw.iter_mut().chain(salt.iter_mut()) {
                    *b = rng.next_u64() as u8;
                }
                let nonce = format!("{client_nonce}{}", base64(&raw));
                let server_first = format!("r={nonce},s={},i={SCRAM_ITERATIONS}", base64(&salt));
                let reply = server_first.clone().into_bytes();
                self.step = Step::Final {
                    password,
                    client_first_bare: bare,
                    server_first,
                    nonce,
                    salt,
                    gs2_header,
                };
                Outcome::Continue(reply)
            }
            (Step::Final { .. }, _) => self.scram_final(msg),
            _ => Outcome::Failed,
        }
    }

    fn scram_final(&mut self, msg: &[u8]) -> Outcome {
        let Step::Final {
            password,
            client_first_bare,
            server_first,
            nonce,
            salt,
            gs2_header,
        } = std::mem::replace(&mut self.step, Step::First)
        else {
            return Outcome::Failed;
        };
        let Ok(msg) = std::str::from_utf8(msg) else {
            return Outcome::Failed;
        };
        let Some((without_proof, proof)) = msg.rsplit_once(",p=") else {
            return Outcome::Failed;
        };
        let field = |key: &str| {
            without_proof
                .split(',')
                .find_map(|kv| kv.strip_prefix(key))
                .map(str::to_owned)
        };
        if field("c=") != Some(base64(gs2_header.as_bytes())) || field("r=") != Some(nonce) {
            return Outcome::Failed;
        }
        let Some(proof) = unbase64(proof) else {
            return Outcome::Failed;
        };
        let sha512 = self.mechanism == "SCRAM-SHA-512";
        let salted = hi(sha512, password.as_bytes(), &salt, SCRAM_ITERATIONS);
        let client_key = hmac(sha512, &salted, b"Client Key");
        let stored_key = digest(sha512, &client_key);
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac(sha512, &stored_key, auth_message.as_bytes());
        let expected: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        if proof != expected {
            return Outcome::Failed;
        }
        let server_key = hmac(sha512, &salted, b"Server Key");
        let server_signature = hmac(sha512, &server_key, auth_message.as_bytes());
        Outcome::Done(format!("v={}", base64(&server_signature)).into_bytes())
    }
}

/// Splits a PLAIN message, `authzid NUL authcid NUL password`.
fn plain(token: &[u8]) -> Option<(&str, &str)> {
    let mut parts = token.splitn(3, |b| *b == 0);
    let _authzid = parts.next()?;
    let user = std::str::from_utf8(parts.next()?).ok()?;
    let password = std::str::from_utf8(parts.next()?).ok()?;
    (!user.is_empty()).then_some((user, password))
}

/// Parses a SCRAM client-first message: (gs2 header, bare message, user, nonce).
fn scram_client_first(msg: &[u8]) -> Option<(String, String, String, String)> {
    let msg = std::str::from_utf8(msg).ok()?;
    // gs2-header: "n," or "y," (no channel binding), an optional "a=authzid", then ",".
    let (flag, rest) = msg.split_once(',')?;
    if flag != "n" && flag != "y" {
        return None;
    }
    let (authzid, bare) = rest.split_once(',')?;
    let gs2_header = format!("{flag},{authzid},");
    let mut user = None;
    let mut nonce = None;
    for kv in bare.split(',') {
        if let Some(u) = kv.strip_prefix("n=") {
            user = Some(u.replace("=2C", ",").replace("=3D", "="));
        } else if let Some(r) = kv.strip_prefix("r=") {
            nonce = Some(r.to_owned());
        }
    }
    Some((
        gs2_header,
        bare.to_owned(),
        user?,
        nonce.filter(|n| !n.is_empty())?,
    ))
}

fn hmac(sha512: bool, key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so these cannot fail.
    if sha512 {
        let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        m.update(data);
        m.finalize().into_bytes().to_vec()
    } else {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
}

fn digest(sha512: bool, data: &[u8]) -> Vec<u8> {
    if sha512 {
        Sha512::digest(data).to_vec()
    } else {
        Sha256::digest(data).to_vec()
    }
}

/// PBKDF2 with HMAC, one block (RFC 5802's Hi).
fn hi(sha512: bool, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(sha512, password, &block);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(sha512, password, &u);
        for (o, x) in out.iter_mut().zip(&u) {
            *o ^= x;
        }
    }
    out
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(super) fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 with padding; `None` if malformed.
pub(super) fn unbase64(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::new();
    for chunk in s.chunks(4) {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = if i >= 4 - pad {
                0
            } else {
                ALPHABET.iter().position(|a| a == c)? as u32
            };
            n |= v << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
            assert_eq!(unbase64(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(unbase64("Zg="), None);
        assert_eq!(unbase64("Z!=="), None);
    }

    /// RFC 7677's SCRAM-SHA-256 example, with the server's nonce and salt forced.
    #[test]
    fn scram_sha256_rfc7677_proof_is_accepted() {
        let salt = unbase64("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let mut ex = Exchange {
            mechanism: "SCRAM-SHA-256".into(),
            step: Step::Final {
                password: "pencil".into(),
                client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
                server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".into(),
                nonce: "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
                salt,
                gs2_header: "n,,".into(),
            },
        };
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            ex.scram_final(client_final.as_bytes()),
            Outcome::Done(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec())
        );
    }

    #[test]
    fn scram_rejects_a_wrong_proof_or_nonce() {
        let cfg = MockConfig::new(1).with_sasl_scram("SCRAM-SHA-512", "u", "p");
        let mut rng = SplitMix(1);
        let mut ex = Exchange::new("SCRAM-SHA-512");
        let Outcome::Continue(first) = ex.step(&cfg, &mut rng, b"n,,n=u,r=abc") else {
            panic!("no challenge");
        };
        let first = String::from_utf8(first).unwrap();
        assert!(first.starts_with("r=abc") && first.ends_with(",i=4096"));
        let nonce = &first[2..first.find(",s=").unwrap()];
        let bad = format!("c=biws,r={nonce},p={}", base64(&[0; 64]));
        assert_eq!(ex.step(&cfg, &mut rng, bad.as_bytes()), Outcome::Failed);
        let mut ex = Exchange::new("SCRAM-SHA-512");
        ex.step(&cfg, &mut rng, b"n,,n=u,r=abc");
        let bad = format!("c=biws,r=other,p={}", base64(&[0; 64]));
        assert_eq!(ex.step(&cfg, &mut rng, bad.as_bytes()), Outcome::Failed);
        assert_eq!(
            Exchange::new("SCRAM-SHA-256").step(&cfg, &mut rng, b"garbage"),
            Outcome::Failed
        );
    }
}
