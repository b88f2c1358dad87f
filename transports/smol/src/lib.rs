//! grete-smol: drives the IO-free [grete] core on smol.
//!
//! ```no_run
//! use grete_smol::{ClientConfig, KafkaClient};
//! use grete_smol::config::{Bootstrap, BrokerAddress};
//!
//! # fn main() -> Result<(), grete_smol::Error> {
//! smol::block_on(async {
//!     let client = KafkaClient::connect(ClientConfig {
//!         bootstrap: Bootstrap::Brokers(BrokerAddress::parse("127.0.0.1:9092")?),
//!         ..ClientConfig::default()
//!     })
//!     .await?;
//!     println!("{:?}", client.brokers());
//!     client.close().await;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! The driver and one task per connection run on smol's global executor
//! (`smol::spawn`), so any executor may await the client. TLS is futures-rustls directly
//! on async-net's streams.
//!
//! ZooKeeper bootstrap (feature `zookeeper`, on by default) uses zookeeper-async, which
//! only runs on tokio: its futures run on a small private tokio runtime (one worker
//! thread, started the first time a client bootstraps from ZooKeeper; see
//! `Runtime::spawn_zookeeper`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use grete_async::{BoxFuture, BoxStream};

pub use grete_async::exports::*;

/// A Kafka client on smol. See [`grete_async::KafkaClient`] for the methods.
pub type KafkaClient = grete_async::KafkaClient<Smol>;

/// A topic handle on smol. See [`grete_async::Topic`] for the methods.
pub type Topic = grete_async::Topic<Smol>;

/// The smol [`Runtime`]: tasks go to smol's global executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

impl Runtime for Smol {
    fn spawn(&self, task: BoxFuture<()>) {
        smol::spawn(task).detach();
    }

    fn resolve(&self, host: String, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { smol::net::resolve((host.as_str(), port)).await })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<BoxStream>> {
        Box::pin(async move {
            let stream = smol::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxStream)
        })
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(async move {
            smol::Timer::at(deadline).await;
        })
    }
}
