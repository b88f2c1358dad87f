//! One connection to a mock broker: queued output, SASL state, and a request frame's way
//! through SASL gating, fault rules and its handler.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::fault::FaultAction;
use super::{config, errors, handlers, sasl, MockConn, Reply, State};
use crate::protocol::frame::FrameDecoder;
use crate::protocol::header::{decode_request, encode_response};
use crate::protocol::messages::{ApiKey, FetchRequest, RequestBody, ResponseBody};
use crate::protocol::ErrorCode;

#[derive(Debug)]
pub(super) enum Chunk {
    Data(Vec<u8>),
    Close,
}

#[derive(Debug)]
pub(super) struct Parked {
    pub(super) correlation_id: i32,
    pub(super) version: i16,
    pub(super) request: FetchRequest,
    pub(super) deadline: Instant,
    /// When it was parked: reported by `poll_timeout` when the cluster changed under it.
    pub(super) since: Instant,
    pub(super) delay: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SaslState {
    /// No SASL on this listener, or done.
    Open,
    /// Only ApiVersions and SaslHandshake are allowed.
    NeedHandshake,
    /// After a SaslHandshake v0: the next frames are raw tokens.
    RawToken(sasl::Exchange),
    /// After a SaslHandshake v1: SaslAuthenticate requests are expected.
    Framed(sasl::Exchange),
}

#[derive(Debug)]
pub(super) struct Conn {
    pub(super) broker: i32,
    pub(super) frames: FrameDecoder,
    pub(super) inbox: VecDeque<Bytes>,
    pub(super) parked: Option<Parked>,
    pub(super) out: VecDeque<(Instant, Chunk)>,
    /// A close is queued: input is ignored from now on.
    pub(super) closing: bool,
    /// A 0.9 broker got ApiVersions: the connection is muted forever.
    pub(super) stuck: bool,
    pub(super) sasl: SaslState,
}

pub(super) fn queue_close(c: &mut Conn, now: Instant, delay: Duration) {
    if c.closing {
        return;
    }
    c.closing = true;
    let at = ready_time(c, now, delay);
    c.out.push_back((at, Chunk::Close));
}

/// When a chunk queued now leaves: after `delay`, and never before earlier chunks.
pub(super) fn ready_time(c: &Conn, now: Instant, delay: Duration) -> Instant {
    let at = now + delay;
    c.out.back().map_or(at, |(last, _)| at.max(*last))
}

pub(super) fn queue_bytes(c: &mut Conn, now: Instant, delay: Duration, bytes: Vec<u8>) {
    let at = ready_time(c, now, delay);
    c.out.push_back((at, Chunk::Data(bytes)));
}

pub(super) fn respond(
    c: &mut Conn,
    now: Instant,
    state: &State,
    version: i16,
    correlation_id: i32,
    body: &ResponseBody,
    extra: Duration,
) {
    let delay = state
        .broker(c.broker)
        .map_or(Duration::ZERO, |b| b.cfg.latency)
        + extra;
    let mut buf = Vec::new();
    match encode_response(&mut buf, version, correlation_id, body) {
        Ok(()) => queue_bytes(c, now, delay, buf),
        // A response the codec refuses is a mock bug; a broker would drop the connection.
        Err(_) => queue_close(c, now, delay),
    }
}

/// One request frame through SASL gating, fault rules and its handler.
pub(super) fn process_frame(
    state: &mut State,
    c: &mut Conn,
    conn: MockConn,
    now: Instant,
    frame: Bytes,
) {
    let latency = state
        .broker(c.broker)
        .map_or(Duration::ZERO, |b| b.cfg.latency);
    if let SaslState::RawToken(exchange) = &mut c.sasl {
        // After SaslHandshake v0 the tokens travel as bare size-prefixed frames.
        let (reply, done) = match exchange.step(&state.cfg, &mut state.rng, &frame) {
            sasl::Outcome::Continue(reply) => (reply, false),
            sasl::Outcome::Done(reply) => (reply, true),
            sasl::Outcome::Failed => return queue_close(c, now, latency),
        };
        if done {
            c.sasl = SaslState::Open;
        }
        let mut buf = (reply.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(&reply);
        queue_bytes(c, now, latency, buf);
        return;
    }
    let (api, version) = match &frame[..] {
        [a, b, v1, v2, ..] => (i16::from_be_bytes([*a, *b]), i16::from_be_bytes([*v1, *v2])),
        _ => return queue_close(c, now, Duration::ZERO),
    };
    let Some(api) = ApiKey::from_i16(api) else {
        return queue_close(c, now, Duration::ZERO);
    };
    let mode = state
        .broker(c.broker)
        .map(|b| b.cfg.mode)
        .unwrap_or_default();
    if api == ApiKey::ApiVersions && mode == config::BrokerMode::Kafka09 {
        // Recorded (it did arrive), never answered, and the connection is muted.
        if let Ok((header, _)) = decode_request(frame) {
            state.log_request(now, c.broker, conn, &header, api, version);
        }
        c.stuck = true;
        return;
    }
    let range = state
        .broker(c.broker)
        .and_then(|b| b.versions.get(&api).copied());
    let supported = range.is_some_and(|(lo, hi)| (lo..=hi).contains(&version));
    if api == ApiKey::ApiVersions && !supported {
        // Answer in v0 with UNSUPPORTED_VERSION and the table, so the client can retry.
        let correlation_id = match &frame[..] {
            [_, _, _, _, a, b, c2, d, ..] => i32::from_be_bytes([*a, *b, *c2, *d]),
            _ => return queue_close(c, now, Duration::ZERO),
        };
        let body = state.api_versions(c.broker, 0, ErrorCode::UnsupportedVersion.code());
        return respond(c, now, state, 0, correlation_id, &body, Duration::ZERO);
    }
    if !supported {
        return queue_close(c, now, Duration::ZERO);
    }
    let Ok((header, body)) = decode_request(frame) else {
        return queue_close(c, now, Duration::ZERO);
    };
    state.log_request(now, c.broker, conn, &header, api, version);
    if !sasl_allows(c, &body) {
        return queue_close(c, now, Duration::ZERO);
    }
    let correlation_id = header.correlation_id;
    let mut extra = Duration::ZERO;
    let mut after = None;
    if let Some(action) = state.take_fault(c.broker, &body) {
        match action {
            FaultAction::Error(code) => {
                let reply = errors::error_response(&body, version, code);
                return respond(
                    c,
                    now,
                    state,
                    version,
                    correlation_id,
                    &reply,
                    Duration::ZERO,
                );
            }
            FaultAction::Close => return queue_close(c, now, Duration::ZERO),
            FaultAction::Delay(d) => extra = d,
            other => after = Some(other),
        }
    }
    let reply = match &body {
        RequestBody::SaslHandshake(r) => sasl_handshake(state, c, version, r),
        RequestBody::SaslAuthenticate(r) => {
            let outcome = match &mut c.sasl {
                SaslState::Framed(exchange) => {
                    exchange.step(&state.cfg, &mut state.rng, &r.auth_bytes)
                }
                _ => sasl::Outcome::Failed,
            };
            let reply = handlers::sasl_authenticate_response(&outcome, version);
            if let sasl::Outcome::Done(_) = outcome {
                c.sasl = SaslState::Open;
            }
            if outcome != sasl::Outcome::Failed {
                Reply::Respond(reply)
            } else {
                respond(
                    c,
                    now,
                    state,
                    version,
                    correlation_id,
                    &reply,
                    Duration::ZERO,
                );
                return queue_close(c, now, Duration::ZERO);
            }
        }
        _ => state.handle(now, c.broker, version, body),
    };
    let body = match reply {
        Reply::Respond(body) => body,
        Reply::Nothing => return,
        Reply::Close => return queue_close(c, now, Duration::ZERO),
        Reply::Park(request) => {
            let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
            c.parked = Some(Parked {
                correlation_id,
                version,
                request,
                deadline: now + wait,
                since: now,
                delay: extra,
            });
            return;
        }
    };
    let delay = latency + extra;
    match after {
        None => respond(c, now, state, version, correlation_id, &body, extra),
        Some(FaultAction::NoResponse) => {}
        Some(FaultAction::CutResponse) => {
            let mut buf = Vec::new();
            if encode_response(&mut buf, version, correlation_id, &body).is_ok() {
                buf.truncate(buf.len() / 2);
                queue_bytes(c, now, delay, buf);
            }
            queue_close(c, now, delay);
        }
        Some(FaultAction::Garbage(bytes)) => queue_bytes(c, now, delay, bytes),
        Some(FaultAction::OversizeFrame(size)) => {
            let mut buf = size.to_be_bytes().to_vec();
            buf.extend_from_slice(&correlation_id.to_be_bytes());
            buf.extend_from_slice(&[0; 8]);
            queue_bytes(c, now, delay, buf);
        }
        Some(_) => respond(c, now, state, version, correlation_id, &body, extra),
    }
}

/// Whether the SASL state lets this request through (Kafka closes the connection of
/// an unauthenticated client that sends anything else).
fn sasl_allows(c: &Conn, body: &RequestBody) -> bool {
    match &c.sasl {
        SaslState::Open => !matches!(body, RequestBody::SaslAuthenticate(_)),
        SaslState::NeedHandshake => {
            matches!(
                body,
                RequestBody::ApiVersions(_) | RequestBody::SaslHandshake(_)
            )
        }
        SaslState::Framed(_) => matches!(body, RequestBody::SaslAuthenticate(_)),
        SaslState::RawToken(_) => false,
    }
}

fn sasl_handshake(
    state: &State,
    c: &mut Conn,
    version: i16,
    r: &crate::protocol::messages::SaslHandshakeRequest,
) -> Reply {
    let Some(cfg) = &state.cfg.sasl else {
        return Reply::Respond(handlers::sasl_handshake_response(
            ErrorCode::IllegalSaslState.code(),
            Vec::new(),
        ));
    };
    if c.sasl != SaslState::NeedHandshake {
        return Reply::Respond(handlers::sasl_handshake_response(
            ErrorCode::IllegalSaslState.code(),
            cfg.mechanisms.clone(),
        ));
    }
    if !cfg.mechanisms.contains(&r.mechanism) {
        return Reply::Respond(handlers::sasl_handshake_response(
            ErrorCode::UnsupportedSaslMechanism.code(),
            cfg.mechanisms.clone(),
        ));
    }
    c.sasl = if version == 0 {
        SaslState::RawToken(sasl::Exchange::new(&r.mechanism))
    } else {
        SaslState::Framed(sasl::Exchange::new(&r.mechanism))
    };
    Reply::Respond(handlers::sasl_handshake_response(0, cfg.mechanisms.clone()))
}
