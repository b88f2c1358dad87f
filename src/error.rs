//! grete's error type, split by who caused the error: the broker, the bytes on the wire,
//! the transport, the clock (deadlines), the configuration or the caller.

use crate::protocol::messages::ApiKey;
use crate::protocol::{DecodeError, EncodeError, ErrorCode};

/// Everything an operation of the core can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The broker answered with an error code.
    #[error("broker error {code}{}", if context.is_empty() { String::new() } else { format!(" ({context})") })]
    Broker {
        /// The code the broker returned.
        code: ErrorCode,
        /// What was asked (topic, partition, request) and the broker's message, if any.
        context: String,
    },
    /// The peer sent bytes that are not a valid Kafka response.
    #[error("protocol error: {0}")]
    Protocol(#[from] DecodeError),
    /// A request could not be encoded in the version the broker supports.
    #[error("cannot encode request: {0}")]
    Encode(#[from] EncodeError),
    /// The connection failed: refused, closed, TLS, IO.
    #[error("transport error: {0}")]
    Transport(#[from] TransportError),
    /// A deadline passed before the answer arrived.
    #[error("timed out: {what}")]
    Timeout {
        /// What was being waited for.
        what: String,
    },
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The caller used the API in a way it does not allow.
    #[error("API misuse: {0}")]
    Misuse(String),
    /// The broker does not support an API this operation needs.
    #[error("the broker (version {broker_version}) does not support {}", api.name())]
    Unsupported {
        /// The API the broker lacks.
        api: ApiKey,
        /// The broker version as known (negotiated, or the configured fallback).
        broker_version: String,
    },
    /// SASL authentication failed on the client side (for example the server's SCRAM
    /// signature did not verify, or the server's message was malformed).
    #[error("SASL authentication failed: {0}")]
    Sasl(String),
    /// ZooKeeper bootstrap failed.
    #[error("ZooKeeper error: {0}")]
    ZooKeeper(String),
}

impl Error {
    /// Whether the operation may succeed if tried again (after a reconnect or a metadata
    /// refresh). Timeouts are retriable; configuration and misuse errors are not.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Broker { code, .. } => code.is_retriable(),
            Error::Transport(t) => t.is_retriable(),
            Error::Timeout { .. } | Error::ZooKeeper(_) => true,
            Error::Protocol(_)
            | Error::Encode(_)
            | Error::Config(_)
            | Error::Misuse(_)
            | Error::Unsupported { .. }
            | Error::Sasl(_) => false,
        }
    }

    /// A broker error with context.
    pub fn broker(code: ErrorCode, context: impl Into<String>) -> Error {
        Error::Broker {
            code,
            context: context.into(),
        }
    }

    /// A timeout error.
    pub fn timeout(what: impl Into<String>) -> Error {
        Error::Timeout { what: what.into() }
    }

    /// The broker error code, if this is a broker error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What kind of transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The host name could not be resolved.
    Resolve,
    /// The peer refused the connection.
    Refused,
    /// Connecting took longer than `connect_timeout`.
    ConnectTimeout,
    /// The peer closed the connection.
    Closed,
    /// The TLS handshake or a TLS record failed (for example an untrusted certificate).
    Tls,
    /// Any other IO error, by its `std::io::ErrorKind`.
    Io(std::io::ErrorKind),
}

/// A transport failure as plain data, so that the core can carry it without doing IO.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct TransportError {
    /// The kind of failure.
    pub kind: TransportErrorKind,
    /// A human-readable description (the OS or TLS library's message).
    pub message: String,
}

impl TransportError {
    /// A transport error of `kind` with `message`.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> TransportError {
        TransportError {
            kind,
            message: message.into(),
        }
    }

    /// The peer closed the connection.
    pub fn closed(message: impl Into<String>) -> TransportError {
        TransportError::new(TransportErrorKind::Closed, message)
    }

    /// Whether connecting again may help. TLS failures (bad certificates) will not.
    pub fn is_retriable(&self) -> bool {
        !matches!(self.kind, TransportErrorKind::Tls)
    }
}

impl From<std::io::Error> for TransportError {
    fn from(e: std::io::Error) -> TransportError {
        let kind = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => TransportErrorKind::Refused,
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe => TransportErrorKind::Closed,
            std::io::ErrorKind::TimedOut => TransportErrorKind::ConnectTimeout,
            k => TransportErrorKind::Io(k),
        };
        TransportError::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_split() {
        assert!(Error::broker(ErrorCode::NotLeaderOrFollower, "t-0").is_retriable());
        assert!(!Error::broker(ErrorCode::TopicAuthorizationFailed, "").is_retriable());
        assert!(Error::Transport(TransportError::closed("eof")).is_retriable());
        assert!(
            !Error::Transport(TransportError::new(TransportErrorKind::Tls, "bad ca"))
                .is_retriable()
        );
        assert!(!Error::Unsupported {
            api: ApiKey::CreateTopics,
            broker_version: "0.9.0".into()
        }
        .is_retriable());
        assert!(Error::timeout("metadata").is_retriable());
    }

    #[test]
    fn messages_name_the_cause() {
        let e = Error::Unsupported {
            api: ApiKey::CreateTopics,
            broker_version: "0.9.0".into(),
        };
        assert_eq!(
            e.to_string(),
            "the broker (version 0.9.0) does not support CreateTopics"
        );
        let e = Error::broker(ErrorCode::NotLeaderOrFollower, "topic t partition 0");
        assert!(e.to_string().contains("NOT_LEADER_OR_FOLLOWER"));
        assert!(e.to_string().contains("topic t partition 0"));
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(TransportError::from(io).kind, TransportErrorKind::Refused);
    }
}
