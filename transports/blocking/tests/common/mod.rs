//! Helpers of the blocking transport's own tests: those of every transport
//! (`transports/testsupport/common.rs`) and a client of the mock cluster.

#![allow(dead_code, unused_imports)]

#[path = "../../../testsupport/common.rs"]
mod shared;

pub use shared::*;

use std::time::Duration;

use grete_blocking::{Bootstrap, BrokerAddress, BrokerVersion, ClientConfig, KafkaClient};

/// A client of the mock cluster `server` (modern brokers: it asks their API versions).
pub fn client(server: &MockServer) -> KafkaClient {
    KafkaClient::connect(ClientConfig {
        bootstrap: Bootstrap::Brokers(BrokerAddress::parse(&server.bootstrap()).unwrap()),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        metadata_max_age: Duration::from_secs(60),
        broker_version: BrokerVersion::new(2, 8, 0),
        ..ClientConfig::default()
    })
    .expect("connect")
}
