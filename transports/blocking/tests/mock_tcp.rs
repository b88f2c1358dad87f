//! grete-blocking's threads sharing one client, against grete's in-memory mock cluster
//! served over TCP on 127.0.0.1 (what every transport is tested for is in the shared
//! suite, `suite_blocking.rs`).

mod common;
use common::{client, MockServer};

use std::thread;

fn latest(topic: &grete_blocking::Topic) -> Vec<(i32, i64)> {
    topic
        .latest_offsets()
        .expect("offsets")
        .into_iter()
        .map(|o| (o.partition, o.result.expect("offset")))
        .collect()
}

#[test]
fn many_threads_share_one_client() {
    let server = MockServer::start(3, |c| c.with_topic("events", 6, 2));
    let client = client(&server);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            thread::spawn(move || {
                for _ in 0..20 {
                    let t = client.topic("events").expect("topic");
                    assert_eq!(latest(&t).len(), 6);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    client.close();
}
