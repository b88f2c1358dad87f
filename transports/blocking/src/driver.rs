//! The driver thread: [`grete_facade::Driver`] over connection threads, parked until the
//! core's next timer or a wake-up.

use std::sync::Arc;
use std::time::Duration;

use grete::client::ConnectionHandle;
use grete::config::TlsConfig;
use grete_facade::zk::ZooKeeper;
use grete_facade::{block_on, Driver, Input, Shared, Transport};

use crate::net::{self, Dial, Link};

/// Connections as threads.
pub struct Threads {
    pub shared: Arc<Shared>,
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    pub tls: Option<(Arc<rustls::ClientConfig>, TlsConfig)>,
}

impl Transport for Threads {
    type Link = Link;

    fn connect(&mut self, conn: ConnectionHandle, host: String, port: u16) -> Arc<Link> {
        let link = Arc::new(Link::default());
        net::dial(Dial {
            conn,
            host,
            port,
            connect_timeout: self.connect_timeout,
            write_timeout: self.write_timeout,
            tls: self.tls.clone(),
            core: self.shared.clone(),
            link: link.clone(),
        });
        link
    }
}

/// The driver thread's loop, until the client closes.
pub fn run(mut driver: Driver<Threads>) {
    loop {
        let next = driver.settle();
        // `None`: the timer is due; `settle` runs it.
        if block_on(next, |cx| driver.shared().poll_input(cx)) == Some(Input::Close) {
            break;
        }
    }
    driver.shut_down();
}

/// The ZooKeeper reads of a client configured with `config`, on the facade's private
/// tokio runtime.
pub fn zookeeper(config: &grete::config::ClientConfig) -> ZooKeeper {
    #[cfg(feature = "zookeeper")]
    let spawn: Option<grete_facade::zk::Spawner> = Some(Box::new(grete_facade::zk::spawn_private));
    #[cfg(not(feature = "zookeeper"))]
    let spawn = None;
    ZooKeeper::new(config, spawn)
}
