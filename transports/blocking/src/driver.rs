//! The driver thread: waits for a message or the core's next timer, then lets
//! [`Shared::settle`] drain the core; its [`Links`] are the connection threads.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grete::client::{Client, ConnectionHandle, Io};
use grete::config::TlsConfig;
use grete_facade::zk::ZooKeeper;
use grete_facade::{Links, Shared, Wake};

use crate::net::{self, Dial, Link};

/// Everything the driver thread receives.
pub enum Msg {
    /// Close the client: unfinished operations fail, connections close, the thread ends.
    Close(Sender<()>),
    /// A connection thread connected (and told the core): the link to close it by.
    Connected(ConnectionHandle, Link),
    /// A handle asks for a drive ([`Wake::Drive`]).
    Wake,
    /// An input drove the client already: drain it.
    Drain,
}

/// Shares `client` with the application's handles, which wake the driver on `tx`. A full
/// channel means the driver has work queued and will drain anyway: waking never blocks.
pub fn share(client: Client, tx: SyncSender<Msg>) -> Arc<Shared> {
    Shared::with_wake(client, move |why| {
        let _ = tx.try_send(match why {
            Wake::Drive => Msg::Wake,
            Wake::Drain => Msg::Drain,
        });
    })
}

enum Slot {
    Connecting,
    Open(Link),
}

pub struct Driver {
    shared: Arc<Shared>,
    tx: SyncSender<Msg>,
    connect_timeout: Duration,
    write_timeout: Duration,
    tls: Option<(Arc<rustls::ClientConfig>, TlsConfig)>,
    zk: ZooKeeper,
    conns: HashMap<ConnectionHandle, Slot>,
}

impl Links for Driver {
    fn poke(&mut self, client: &Client) {
        // A connection the core has forgotten ended: drop its link.
        self.conns.retain(|h, slot| {
            let known = client.connection_state(*h).is_some();
            if let Slot::Open(link) = slot {
                if !known {
                    link.close();
                } else if client.wants_transmit(*h) {
                    link.nudge();
                }
            }
            known
        });
    }

    fn carry_out(&mut self, io: Io) {
        match io {
            Io::Connect { conn, host, port } => {
                self.conns.insert(conn, Slot::Connecting);
                let dial = Dial {
                    conn,
                    host,
                    port,
                    connect_timeout: self.connect_timeout,
                    write_timeout: self.write_timeout,
                    tls: self.tls.clone(),
                    core: self.shared.clone(),
                };
                net::dial(dial, self.tx.clone());
            }
            Io::Close { conn } => {
                if let Some(Slot::Open(link)) = self.conns.remove(&conn) {
                    link.close();
                }
            }
            Io::ZooKeeper { op, request } => self.zk.read(&self.shared, op, request),
            other => debug_assert!(false, "unknown instruction {other:?}"),
        }
    }
}

impl Driver {
    pub fn new(
        shared: Arc<Shared>,
        tx: SyncSender<Msg>,
        tls: Option<(Arc<rustls::ClientConfig>, TlsConfig)>,
    ) -> Driver {
        let config = shared.lock().client.config().clone();
        #[cfg(feature = "zookeeper")]
        let spawn: Option<grete_facade::zk::Spawner> =
            Some(Box::new(grete_facade::zk::spawn_private));
        #[cfg(not(feature = "zookeeper"))]
        let spawn = None;
        Driver {
            zk: ZooKeeper::new(&config, spawn),
            shared,
            tx,
            connect_timeout: config.connect_timeout,
            write_timeout: config.write_timeout(),
            tls,
            conns: HashMap::new(),
        }
    }

    /// The loop: drain, then wait for a message or the client's next timer.
    pub fn run(mut self, rx: Receiver<Msg>) {
        let shared = self.shared.clone();
        let reply = loop {
            let msg = match shared.settle(&mut self) {
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(m) => m,
                    // `settle` runs the timers that are due.
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break None,
                },
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break None,
                },
            };
            match msg {
                Msg::Close(done) => break Some(done),
                Msg::Wake => shared.drive(),
                Msg::Drain => {}
                Msg::Connected(conn, link) => match self.conns.get_mut(&conn) {
                    Some(slot @ Slot::Connecting) => *slot = Slot::Open(link),
                    // Closed by the client meanwhile (its connect timeout, say).
                    _ => link.close(),
                },
            }
        };
        shared.shut_down(&mut self);
        for (_, slot) in self.conns.drain() {
            if let Slot::Open(link) = slot {
                link.close();
            }
        }
        self.zk.close();
        if let Some(done) = reply {
            let _ = done.send(());
        }
    }
}
