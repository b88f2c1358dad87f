//! grete-tokio: drives the IO-free [grete] core on tokio.
//!
//! ```no_run
//! use grete_tokio::{ClientConfig, KafkaClient};
//! use grete_tokio::config::{Bootstrap, BrokerAddress};
//!
//! # async fn run() -> Result<(), grete_tokio::Error> {
//! let client = KafkaClient::connect(ClientConfig {
//!     bootstrap: Bootstrap::Brokers(BrokerAddress::parse("127.0.0.1:9092")?),
//!     ..ClientConfig::default()
//! })
//! .await?;
//! for topic in client.topics() {
//!     let topic = client.topic(&topic).await?;
//!     println!("{} {:?}", topic.name(), topic.latest_offsets().await?);
//! }
//! client.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Consuming
//!
//! `Topic::simple_consumer` reads every partition (`simple_consumer_for` chosen ones,
//! each from its own start), `KafkaClient::simple_consumer(&["a", "b"], config)` several
//! topics (name partitions `("a", 0)` then); messages come as a `Stream` (or `next_message`), or batch
//! by batch with records borrowed from the batch (no allocation per record).
//!
//! ```no_run
//! use grete_tokio::{KafkaClient, OffsetSpec, SimpleConsumerConfig};
//! # async fn run(client: KafkaClient) -> Result<(), grete_tokio::Error> {
//! let topic = client.topic("events").await?;
//! let mut consumer = topic
//!     .simple_consumer(SimpleConsumerConfig {
//!         consumer_group: Some("billing".into()), // start where the group left off
//!         consumer_timeout_ms: Some(5_000),       // the stream ends after 5 s of silence
//!         ..SimpleConsumerConfig::default()
//!     })
//!     .await?;
//! while let Some(message) = consumer.next_message().await {
//!     let m = message?;
//!     println!("{}/{} at {}: {:?}", m.topic, m.partition, m.offset, m.value);
//! }
//! // The batch API: one lock per batch, keys and values borrowed.
//! consumer.seek(0, OffsetSpec::Earliest)?;
//! while let Some(batch) = consumer.next_batch().await {
//!     for record in batch.records() {
//!         let record = record?;
//!         let _ = (record.offset, record.key, record.value);
//!     }
//! }
//! consumer.close(std::time::Duration::from_secs(5)).await?; // commits for the group
//! # Ok(())
//! # }
//! ```
//!
//! Call it from inside a tokio runtime with the time driver and IO enabled
//! (`#[tokio::main]` or `Builder::enable_all`). The driver, one task per connection and
//! the ZooKeeper reads (feature `zookeeper`, on by default) run as tokio tasks. TLS is
//! futures-rustls over tokio-util's compat layer.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use grete_async::{BoxFuture, BoxStream};
use tokio_util::compat::TokioAsyncReadCompatExt;

pub use grete_async::exports::*;

/// A Kafka client on tokio. See [`grete_async::KafkaClient`] for the methods.
pub type KafkaClient = grete_async::KafkaClient<Tokio>;

/// A topic handle on tokio. See [`grete_async::Topic`] for the methods.
pub type Topic = grete_async::Topic<Tokio>;

/// The tokio [`Runtime`]: tasks go to the current tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    fn check(&self) -> Result<(), Error> {
        tokio::runtime::Handle::try_current()
            .map(|_| ())
            .map_err(|e| Error::Misuse(format!("grete-tokio needs a tokio runtime: {e}")))
    }

    fn spawn(&self, task: BoxFuture<()>) {
        tokio::spawn(task);
    }

    fn resolve(&self, host: String, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<BoxStream>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream.compat()) as BoxStream)
        })
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    #[cfg(feature = "zookeeper")]
    fn spawn_zookeeper(&self, task: BoxFuture<()>) -> Result<(), String> {
        tokio::spawn(task);
        Ok(())
    }
}
