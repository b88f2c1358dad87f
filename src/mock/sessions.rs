//! Fetch sessions (KIP-227) as a broker keeps them: a full fetch with epoch 0 creates a
//! session; an incremental one (its id, the next epoch) lists only partitions that changed
//! and forgets some, and is answered with only the partitions that have something new
//! (records, an error, a moved high watermark / last stable / log start offset) or that it
//! listed. A wrong id or epoch is a top-level error. Partitions that returned records move
//! to the end of the session's order, so each gets to be first (KIP-74) in turn.

use std::collections::BTreeMap;

use super::State;
use crate::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use crate::protocol::messages::{FetchRequest, FetchResponse, ResponseBody};
use crate::protocol::ErrorCode;

/// One partition of a session, as the broker caches it.
#[derive(Debug, Clone)]
struct Cached {
    topic: String,
    partition: FetchPartition,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
}

/// A fetch session of one broker.
#[derive(Debug, Clone, Default)]
pub(crate) struct Session {
    /// The epoch the next incremental request must carry.
    epoch: i32,
    parts: Vec<Cached>,
    /// The partitions the request being answered listed (incremental requests only).
    listed: Option<Vec<(String, i32)>>,
}

/// The sessions of the whole cluster, by (broker, session id).
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: BTreeMap<(i32, i32), Session>,
    next_id: i32,
}

impl Sessions {
    /// How many sessions there are.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Forgets a broker's sessions (it restarted).
    pub(crate) fn drop_broker(&mut self, broker: i32) {
        self.by_id.retain(|(b, _), _| *b != broker);
    }
}

/// A Fetch answer with only a top-level error.
pub(crate) fn error_response(code: ErrorCode) -> ResponseBody {
    ResponseBody::Fetch(FetchResponse {
        error_code: code.code(),
        ..Default::default()
    })
}

impl State {
    /// The request to serve for a Fetch: itself without a session, else every partition
    /// of the session (marked with its id), or the top-level error to answer with.
    pub(crate) fn resolve_fetch_session(
        &mut self,
        broker: i32,
        r: FetchRequest,
        v: i16,
    ) -> Result<FetchRequest, ErrorCode> {
        if v < 7 || (r.session_id == 0 && r.session_epoch == -1) {
            return Ok(FetchRequest { session_id: 0, ..r });
        }
        let sessions = &mut self.sessions;
        if r.session_id == 0 {
            if r.session_epoch != 0 {
                return Err(ErrorCode::InvalidFetchSessionEpoch);
            }
            sessions.next_id += 1;
            let id = sessions.next_id;
            let parts = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| Cached {
                        topic: t.topic.clone(),
                        partition: p.clone(),
                        high_watermark: -1,
                        last_stable_offset: -1,
                        log_start_offset: -1,
                    })
                })
                .collect();
            sessions.by_id.insert(
                (broker, id),
                Session {
                    epoch: 1,
                    parts,
                    listed: None,
                },
            );
            return Ok(FetchRequest {
                session_id: id,
                ..r
            });
        }
        if r.session_epoch == -1 {
            sessions.by_id.remove(&(broker, r.session_id));
            return Ok(FetchRequest { session_id: 0, ..r });
        }
        let Some(s) = sessions.by_id.get_mut(&(broker, r.session_id)) else {
            return Err(ErrorCode::FetchSessionIdNotFound);
        };
        if r.session_epoch != s.epoch {
            return Err(ErrorCode::InvalidFetchSessionEpoch);
        }
        s.epoch = if s.epoch == i32::MAX { 1 } else { s.epoch + 1 };
        for f in &r.forgotten_topics_data {
            s.parts
                .retain(|c| !(c.topic == f.topic && f.partitions.contains(&c.partition.partition)));
        }
        let mut listed = Vec::new();
        for t in &r.topics {
            for p in &t.partitions {
                listed.push((t.topic.clone(), p.partition));
                match s
                    .parts
                    .iter_mut()
                    .find(|c| c.topic == t.topic && c.partition.partition == p.partition)
                {
                    Some(c) => c.partition = p.clone(),
                    None => s.parts.push(Cached {
                        topic: t.topic.clone(),
                        partition: p.clone(),
                        high_watermark: -1,
                        last_stable_offset: -1,
                        log_start_offset: -1,
                    }),
                }
            }
        }
        s.listed = Some(listed);
        let mut topics: Vec<FetchTopic> = Vec::new();
        for c in &s.parts {
            match topics.last_mut() {
                Some(t) if t.topic == c.topic => t.partitions.push(c.partition.clone()),
                _ => topics.push(FetchTopic {
                    topic: c.topic.clone(),
                    partitions: vec![c.partition.clone()],
                    ..Default::default()
                }),
            }
        }
        Ok(FetchRequest {
            topics,
            forgotten_topics_data: Vec::new(),
            ..r
        })
    }

    /// Answers a Fetch served for `request` (from [`resolve_fetch_session`]): a session's
    /// answer carries its id and, for an incremental request, only what changed.
    pub(crate) fn fetch_answer(
        &mut self,
        broker: i32,
        request: &FetchRequest,
        v: i16,
    ) -> ResponseBody {
        let body = self.fetch_response(broker, request, v);
        let ResponseBody::Fetch(mut response) = body else {
            return body;
        };
        if request.session_id == 0 {
            return ResponseBody::Fetch(response);
        }
        let Some(s) = self.sessions.by_id.get_mut(&(broker, request.session_id)) else {
            return ResponseBody::Fetch(response);
        };
        response.session_id = request.session_id;
        let listed = s.listed.take();
        let mut with_records = Vec::new();
        for t in &mut response.responses {
            t.partitions.retain(|d| {
                let Some(c) = s
                    .parts
                    .iter_mut()
                    .find(|c| c.topic == t.topic && c.partition.partition == d.partition_index)
                else {
                    return true;
                };
                let records = d.records.as_ref().is_some_and(|r| !r.is_empty());
                let changed = records
                    || d.error_code != 0
                    || c.high_watermark != d.high_watermark
                    || c.last_stable_offset != d.last_stable_offset
                    || c.log_start_offset != d.log_start_offset;
                c.high_watermark = d.high_watermark;
                c.last_stable_offset = d.last_stable_offset;
                c.log_start_offset = d.log_start_offset;
                if records {
                    with_records.push((t.topic.clone(), d.partition_index));
                }
                let asked = listed.as_ref().map_or(true, |l| {
                    l.iter()
                        .any(|(topic, p)| *topic == t.topic && *p == d.partition_index)
                });
                changed || asked
            });
        }
        response.responses.retain(|t| !t.partitions.is_empty());
        // Rotation: those that returned records go to the back.
        for (topic, p) in with_records {
            if let Some(i) = s
                .parts
                .iter()
                .position(|c| c.topic == topic && c.partition.partition == p)
            {
                let c = s.parts.remove(i);
                s.parts.push(c);
            }
        }
        ResponseBody::Fetch(response)
    }
}
