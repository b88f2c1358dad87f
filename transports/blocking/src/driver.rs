//! The driver thread: owns the core [`Client`], reads the clock, feeds it what the
//! connection threads report, carries out its instructions, and hands finished operations
//! back to the application threads waiting for them.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use grete::client::{
    Client, ConnectionHandle, Event, Io, OpId, Output, ZkError, ZkOpId, ZkResponse,
};
use grete::cluster::Cluster;
use grete::config::{ClientConfig, TlsConfig};
use grete::error::Error;

use crate::net::{self, Dial, IoMsg, Link};

/// Starts an operation on the client.
pub type StartOp = Box<dyn FnOnce(&mut Client, Instant) -> OpId + Send>;

/// Everything the driver thread receives.
pub enum Msg {
    /// Start an operation; its result goes to `reply`.
    Op(StartOp, Sender<Result<Output, Error>>),
    /// Close the client: unfinished operations fail, connections close, the thread ends.
    Close(Sender<()>),
    /// From a connection thread.
    Io(IoMsg),
    /// A ZooKeeper read finished.
    Zk(ZkOpId, Result<ZkResponse, ZkError>),
}

enum Slot {
    Connecting,
    Open(Link),
}

pub struct Driver {
    client: Client,
    rx: Receiver<Msg>,
    tx: SyncSender<Msg>,
    tls: Option<(Arc<rustls::ClientConfig>, TlsConfig)>,
    conns: HashMap<ConnectionHandle, Slot>,
    waiting: HashMap<OpId, Sender<Result<Output, Error>>>,
    snapshot: Arc<Mutex<Arc<Cluster>>>,
    /// The cluster generation `snapshot` holds.
    published: u64,
    #[cfg(feature = "zookeeper")]
    zk: Option<crate::zk::ZkHandle>,
    buf: Vec<u8>,
}

impl Driver {
    pub fn new(
        client: Client,
        rx: Receiver<Msg>,
        tx: SyncSender<Msg>,
        tls: Option<(Arc<rustls::ClientConfig>, TlsConfig)>,
        snapshot: Arc<Mutex<Arc<Cluster>>>,
    ) -> Driver {
        Driver {
            published: client.cluster_generation(),
            client,
            rx,
            tx,
            tls,
            conns: HashMap::new(),
            waiting: HashMap::new(),
            snapshot,
            #[cfg(feature = "zookeeper")]
            zk: None,
            buf: Vec::new(),
        }
    }

    fn config(&self) -> &ClientConfig {
        self.client.config()
    }

    /// The loop: wait for a message or the client's next timer, handle it, drain.
    pub fn run(mut self) {
        loop {
            self.drain();
            let now = Instant::now();
            let wait = match self.client.poll_timeout() {
                // The core's contract: after handle_timeout(now) nothing is due at `now`,
                // so this cannot spin.
                Some(at) if at <= now => {
                    self.client.handle_timeout(now);
                    continue;
                }
                Some(at) => Some(at - now),
                None => None,
            };
            let msg = match wait {
                Some(d) => match self.rx.recv_timeout(d) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        self.client.handle_timeout(Instant::now());
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match self.rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            if let Some(done) = self.handle(msg) {
                self.shutdown();
                let _ = done.send(());
                return;
            }
        }
        self.shutdown();
    }

    /// Handles one message; returns the reply channel of a close request.
    fn handle(&mut self, msg: Msg) -> Option<Sender<()>> {
        let now = Instant::now();
        match msg {
            Msg::Op(start, reply) => {
                let op = start(&mut self.client, now);
                self.waiting.insert(op, reply);
            }
            Msg::Close(done) => return Some(done),
            Msg::Io(IoMsg::Connected(conn, link)) => match self.conns.get_mut(&conn) {
                Some(slot @ Slot::Connecting) => {
                    *slot = Slot::Open(link);
                    self.client.handle_connected(now, conn);
                }
                // Closed by the client meanwhile (its connect timeout, say).
                _ => link.close(),
            },
            Msg::Io(IoMsg::ConnectFailed(conn, error)) => {
                if self.conns.remove(&conn).is_some() {
                    self.client.handle_connect_failed(now, conn, error);
                }
            }
            Msg::Io(IoMsg::Data(conn, data)) => {
                if matches!(self.conns.get(&conn), Some(Slot::Open(_))) {
                    self.client.handle_data(now, conn, &data);
                }
            }
            Msg::Io(IoMsg::Closed(conn, error)) => {
                if let Some(slot) = self.conns.remove(&conn) {
                    if let Slot::Open(link) = slot {
                        link.close();
                    }
                    self.client.handle_closed(now, conn, error);
                }
            }
            Msg::Zk(op, result) => self.client.handle_zk_result(now, op, result),
        }
        None
    }

    /// Drains the client in the documented order until it has nothing more to say.
    fn drain(&mut self) {
        // Bounded: each pass takes what is ready now; a few passes settle it.
        for _ in 0..64 {
            let mut moved = false;
            while let Some(io) = self.client.poll_io() {
                moved = true;
                self.io(io);
            }
            let now = Instant::now();
            loop {
                self.buf.clear();
                let Some(conn) = self.client.poll_transmit(now, &mut self.buf) else {
                    break;
                };
                moved = true;
                if let Some(Slot::Open(link)) = self.conns.get(&conn) {
                    // A closed writer reports the closure itself.
                    let _ = link.writer.send(std::mem::take(&mut self.buf));
                }
            }
            while let Some(event) = self.client.poll_event() {
                moved = true;
                if let Event::Done { op, result } = event {
                    if let Some(reply) = self.waiting.remove(&op) {
                        // Refresh the snapshot first, so the caller sees what the op did.
                        self.refresh_snapshot();
                        let _ = reply.send(result);
                    }
                }
            }
            if !moved {
                break;
            }
        }
        self.refresh_snapshot();
    }

    fn refresh_snapshot(&mut self) {
        let generation = self.client.cluster_generation();
        if generation != self.published {
            self.published = generation;
            *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) =
                self.client.cluster_snapshot();
        }
    }

    fn io(&mut self, io: Io) {
        match io {
            Io::Connect { conn, host, port } => {
                self.conns.insert(conn, Slot::Connecting);
                let dial = Dial {
                    conn,
                    host,
                    port,
                    connect_timeout: self.config().connect_timeout,
                    write_timeout: self.config().write_timeout(),
                    tls: self.tls.clone(),
                };
                net::dial(dial, self.tx.clone());
            }
            Io::Close { conn } => {
                if let Some(Slot::Open(link)) = self.conns.remove(&conn) {
                    link.close();
                }
            }
            Io::ZooKeeper { op, request } => self.zookeeper(op, request),
            other => {
                // A newer core with an instruction this transport does not know.
                debug_assert!(false, "unknown instruction {other:?}");
            }
        }
    }

    #[cfg(feature = "zookeeper")]
    fn zookeeper(&mut self, op: ZkOpId, request: grete::client::ZkRequest) {
        use grete::client::ZkErrorKind;
        let now = Instant::now();
        if self.zk.is_none() {
            let hosts = self
                .config()
                .bootstrap
                .zookeeper_hosts()
                .unwrap_or_default()
                .to_owned();
            let started = crate::zk::ZkHandle::start(
                hosts,
                self.config().zookeeper_session_timeout(),
                self.config().zookeeper_request_timeout(),
                self.tx.clone(),
            );
            match started {
                Ok(h) => self.zk = Some(h),
                Err(e) => {
                    let error = ZkError {
                        kind: ZkErrorKind::Other,
                        message: format!("cannot start the ZooKeeper thread: {e}"),
                    };
                    self.client.handle_zk_result(now, op, Err(error));
                    return;
                }
            }
        }
        if let Some(zk) = &self.zk {
            if let Err(e) = zk.submit(op, request) {
                self.zk = None;
                self.client.handle_zk_result(now, op, Err(e));
            }
        }
    }

    #[cfg(not(feature = "zookeeper"))]
    fn zookeeper(&mut self, op: ZkOpId, _request: grete::client::ZkRequest) {
        let error = ZkError {
            kind: grete::client::ZkErrorKind::Other,
            message: "grete-blocking was built without the `zookeeper` feature".into(),
        };
        self.client.handle_zk_result(Instant::now(), op, Err(error));
    }

    fn shutdown(&mut self) {
        let now = Instant::now();
        self.client.close(now);
        self.drain();
        for (_, slot) in self.conns.drain() {
            if let Slot::Open(link) = slot {
                link.close();
            }
        }
        for (_, reply) in self.waiting.drain() {
            let _ = reply.send(Err(Error::Misuse("client closed".into())));
        }
    }
}
