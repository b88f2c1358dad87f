//! Fault injection rules: which request they catch and what happens to it.

use std::time::Duration;

use crate::protocol::messages::{ApiKey, RequestBody};
use crate::protocol::ErrorCode;

/// Which requests a fault applies to. Every `Some` field must match.
///
/// ```
/// use grete::mock::Matcher;
/// let m = Matcher::any().broker(1).partition("events", 0);
/// assert_eq!(m.broker, Some(1));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Matcher {
    /// Only requests of this API.
    pub api: Option<ApiKey>,
    /// Only requests to this broker.
    pub broker: Option<i32>,
    /// Only requests that name this topic.
    pub topic: Option<String>,
    /// Only requests that name this partition (of `topic`, if set).
    pub partition: Option<i32>,
}

impl Matcher {
    /// Matches every request.
    pub fn any() -> Self {
        Matcher::default()
    }

    /// Matches requests of `api`.
    pub fn api(api: ApiKey) -> Self {
        Matcher {
            api: Some(api),
            ..Matcher::default()
        }
    }

    /// Narrows to requests sent to broker `id`.
    pub fn broker(mut self, id: i32) -> Self {
        self.broker = Some(id);
        self
    }

    /// Narrows to requests naming `topic`.
    pub fn topic(mut self, topic: &str) -> Self {
        self.topic = Some(topic.to_owned());
        self
    }

    /// Narrows to requests naming partition `partition` of `topic`.
    pub fn partition(mut self, topic: &str, partition: i32) -> Self {
        self.topic = Some(topic.to_owned());
        self.partition = Some(partition);
        self
    }

    pub(super) fn matches(
        &self,
        broker: i32,
        body: &RequestBody,
        names: &dyn Fn(&[u8; 16]) -> Option<String>,
    ) -> bool {
        if self.api.is_some_and(|a| a != body.api_key()) {
            return false;
        }
        if self.broker.is_some_and(|b| b != broker) {
            return false;
        }
        if self.topic.is_none() && self.partition.is_none() {
            return true;
        }
        mentions(body, names).iter().any(|(t, p)| {
            self.topic.as_ref().map_or(true, |want| t == want)
                && self
                    .partition
                    .map_or(true, |want| p.map_or(true, |p| p == want))
        })
    }
}

/// What happens to a request a fault catches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer with this error code (in every partition / topic / the top-level field of
    /// the response) without acting on the request.
    Error(ErrorCode),
    /// Act on the request but never answer it; the connection stays open.
    NoResponse,
    /// Close the connection instead of acting on the request.
    Close,
    /// Act on the request, send the first half of the response, then close the
    /// connection (a broker dying mid-response).
    CutResponse,
    /// Act on the request but send these bytes instead of the response; the connection
    /// stays open.
    Garbage(Vec<u8>),
    /// Act on the request but answer with a frame header announcing `size` bytes (and a
    /// few bytes of body): a frame larger than the client accepts.
    OversizeFrame(u32),
    /// Act on the request and answer it this much later than usual.
    Delay(Duration),
}

/// A fault rule: `action` for the next `times` requests `matcher` accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Which requests.
    pub matcher: Matcher,
    /// What happens to them.
    pub action: FaultAction,
    /// How many more requests it catches.
    pub times: usize,
}

/// The (topic, partition) pairs a request names; topic ids are resolved with `names`.
fn mentions(
    body: &RequestBody,
    names: &dyn Fn(&[u8; 16]) -> Option<String>,
) -> Vec<(String, Option<i32>)> {
    let mut out = Vec::new();
    match body {
        RequestBody::Produce(r) => {
            for t in &r.topic_data {
                for p in &t.partition_data {
                    out.push((t.name.clone(), Some(p.index)));
                }
            }
        }
        RequestBody::Fetch(r) => {
            for t in &r.topics {
                let name = if t.topic.is_empty() {
                    names(&t.topic_id.0).unwrap_or_default()
                } else {
                    t.topic.clone()
                };
                for p in &t.partitions {
                    out.push((name.clone(), Some(p.partition)));
                }
            }
        }
        RequestBody::ListOffsets(r) => {
            for t in &r.topics {
                for p in &t.partitions {
                    out.push((t.name.clone(), Some(p.partition_index)));
                }
            }
        }
        RequestBody::Metadata(r) => {
            for t in r.topics.iter().flatten() {
                let name = t.name.clone().or_else(|| names(&t.topic_id.0));
                out.push((name.unwrap_or_default(), None));
            }
        }
        RequestBody::CreateTopics(r) => {
            out.extend(r.topics.iter().map(|t| (t.name.clone(), None)));
        }
        RequestBody::DeleteTopics(r) => {
            out.extend(r.topic_names.iter().map(|t| (t.clone(), None)));
            for t in &r.topics {
                let name = t.name.clone().or_else(|| names(&t.topic_id.0));
                out.push((name.unwrap_or_default(), None));
            }
        }
        RequestBody::OffsetCommit(r) => {
            for t in &r.topics {
                for p in &t.partitions {
                    out.push((t.name.clone(), Some(p.partition_index)));
                }
            }
        }
        RequestBody::OffsetFetch(r) => {
            for t in r.topics.iter().flatten() {
                for p in &t.partition_indexes {
                    out.push((t.name.clone(), Some(*p)));
                }
            }
            for g in &r.groups {
                for t in g.topics.iter().flatten() {
                    for p in &t.partition_indexes {
                        out.push((t.name.clone(), Some(*p)));
                    }
                }
            }
        }
        _ => {}
    }
    out
}
