//! The server side of SASL in the mock: PLAIN.

use super::MockConfig;

/// Checks one client token for `mechanism` against the configured users.
pub(super) fn authenticate(cfg: &MockConfig, mechanism: &str, token: &[u8]) -> bool {
    let Some(sasl) = &cfg.sasl else {
        return false;
    };
    match mechanism {
        "PLAIN" => plain(token).is_some_and(|(user, password)| {
            sasl.users
                .iter()
                .any(|(u, p)| u.as_bytes() == user && p.as_bytes() == password)
        }),
        _ => false,
    }
}

/// Splits a PLAIN message, `authzid NUL authcid NUL password` (RFC 4616).
fn plain(token: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut parts = token.splitn(3, |b| *b == 0);
    let _authzid = parts.next()?;
    let user = parts.next()?;
    let password = parts.next()?;
    (!user.is_empty()).then_some((user, password))
}
