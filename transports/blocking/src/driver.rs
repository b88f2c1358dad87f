//! The driver thread: reads the clock, runs the core's timers, carries out its IO
//! instructions (dialling, closing, ZooKeeper), wakes the connections' writers and runs
//! the producers' delivery callbacks.
//!
//! It does not own the core: the [`Client`] lives in a [`grete_facade::Shared`], behind
//! one lock. The application's threads take it to start operations and append records
//! (then park until their waker is woken); the connection threads take it to hand over
//! what they read and to pull what they write. The driver locks it for one input and the
//! drain that follows, and never does IO while holding it.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::Instant;

use grete::client::{Client, ConnectionHandle, Io, ZkError, ZkOpId, ZkResponse};
use grete::config::{ClientConfig, TlsConfig};

use crate::net::{self, Dial, IoMsg, Link};

/// Everything the driver thread receives.
pub enum Msg {
    /// Close the client: unfinished operations fail, connections close, the thread ends.
    Close(Sender<()>),
    /// From a connection thread.
    Io(IoMsg),
    /// A ZooKeeper read finished.
    Zk(ZkOpId, Result<ZkResponse, ZkError>),
    /// A producer opened or filled a batch, flushed, or waits for room: drive the client.
    Wake,
    /// A connection thread drove the client (bytes in, bytes pulled): drain it.
    Drain,
}

enum Slot {
    Connecting,
    Open(Link),
}

pub struct Driver {
    core: Arc<grete_facade::Shared>,
    config: ClientConfig,
    rx: Receiver<Msg>,
    tx: SyncSender<Msg>,
    tls: Option<(Arc<rustls::ClientConfig>, TlsConfig)>,
    conns: HashMap<ConnectionHandle, Slot>,
    #[cfg(feature = "zookeeper")]
    zk: Option<crate::zk::ZkHandle>,
    /// Instructions taken out under the lock, carried out after it.
    io: Vec<Io>,
}

/// Shares `client` with the application's handles: a handle wakes the driver with a
/// [`Msg::Wake`] on `tx`. A full channel means the driver has work queued and will drive
/// the client anyway, so the wake-up never blocks and is never needed twice.
pub fn share(client: Client, tx: SyncSender<Msg>) -> Arc<grete_facade::Shared> {
    grete_facade::Shared::new(client, move || {
        let _ = tx.try_send(Msg::Wake);
    })
}

impl Driver {
    pub fn new(
        core: Arc<grete_facade::Shared>,
        rx: Receiver<Msg>,
        tx: SyncSender<Msg>,
        tls: Option<(Arc<rustls::ClientConfig>, TlsConfig)>,
    ) -> Driver {
        let config = core.lock().client.config().clone();
        Driver {
            core,
            config,
            rx,
            tx,
            tls,
            conns: HashMap::new(),
            #[cfg(feature = "zookeeper")]
            zk: None,
            io: Vec::new(),
        }
    }

    /// The loop: wait for a message or the client's next timer, handle it, drain.
    pub fn run(mut self) {
        loop {
            self.drain();
            let now = Instant::now();
            let wait = {
                let mut core = self.core.lock();
                match core.client.poll_timeout() {
                    // The core's contract: after handle_timeout(now) nothing is due at
                    // `now`, so this cannot spin.
                    Some(at) if at <= now => {
                        core.client.handle_timeout(now);
                        continue;
                    }
                    Some(at) => Some(at - now),
                    None => None,
                }
            };
            let msg = match wait {
                Some(d) => match self.rx.recv_timeout(d) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        self.core.lock().client.handle_timeout(Instant::now());
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
        let mut core = self.core.lock();
        let client = &mut core.client;
        match msg {
            Msg::Close(done) => return Some(done),
            Msg::Wake => client.handle_timeout(now),
            // The loop drains after every message.
            Msg::Drain => {}
            Msg::Io(IoMsg::Connected(conn, link)) => match self.conns.get_mut(&conn) {
                // The connection thread told the core already.
                Some(slot @ Slot::Connecting) => *slot = Slot::Open(link),
                // Closed by the client meanwhile (its connect timeout, say).
                _ => {
                    drop(core);
                    link.close();
                }
            },
            Msg::Io(IoMsg::ConnectFailed(conn, error)) => {
                if self.conns.remove(&conn).is_some() {
                    client.handle_connect_failed(now, conn, error);
                }
            }
            Msg::Io(IoMsg::Closed(conn, error)) => {
                if let Some(slot) = self.conns.remove(&conn) {
                    client.handle_closed(now, conn, error);
                    drop(core);
                    if let Slot::Open(link) = slot {
                        link.close();
                    }
                }
            }
            Msg::Zk(op, result) => client.handle_zk_result(now, op, result),
        }
        None
    }

    /// Drains the client in the documented order (IO, transmits, events) under the lock,
    /// then carries out the IO and answers the finished operations without it; again
    /// while that IO gives the client more to say (a failed ZooKeeper start), a bounded
    /// number of times.
    fn drain(&mut self) {
        for _ in 0..64 {
            {
                let mut core = self.core.lock();
                while let Some(io) = core.client.poll_io() {
                    self.io.push(io);
                }
                // The writers pull their bytes from the core when idle (that is where
                // producers' batches are sealed): tell them it may have some.
                for (h, slot) in &self.conns {
                    if let Slot::Open(link) = slot {
                        if core.client.wants_transmit(*h) {
                            link.nudge();
                        }
                    }
                }
                // Operation results and delivery reports go to their waiters, who need
                // the lock to read them: after the snapshot below is published, so a
                // caller sees what its operation did. What is left (broker failures) the
                // application learns from its errors.
                while core.poll_event().is_some() {}
                self.core.publish_cluster(&mut core);
            }
            self.core.run_callbacks();
            if self.io.is_empty() {
                return;
            }
            let mut io = std::mem::take(&mut self.io);
            for i in io.drain(..) {
                self.carry_out(i);
            }
            self.io = io;
        }
    }

    fn carry_out(&mut self, io: Io) {
        match io {
            Io::Connect { conn, host, port } => {
                self.conns.insert(conn, Slot::Connecting);
                let dial = Dial {
                    conn,
                    host,
                    port,
                    connect_timeout: self.config.connect_timeout,
                    write_timeout: self.config.write_timeout(),
                    tls: self.tls.clone(),
                    core: self.core.clone(),
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
        if self.zk.is_none() {
            let hosts = self
                .config
                .bootstrap
                .zookeeper_hosts()
                .unwrap_or_default()
                .to_owned();
            let started = crate::zk::ZkHandle::start(
                hosts,
                self.config.zookeeper_session_timeout(),
                self.config.zookeeper_request_timeout(),
                self.tx.clone(),
            );
            match started {
                Ok(h) => self.zk = Some(h),
                Err(e) => {
                    let error = ZkError {
                        kind: ZkErrorKind::Other,
                        message: format!("cannot start the ZooKeeper thread: {e}"),
                    };
                    self.zk_failed(op, error);
                    return;
                }
            }
        }
        if let Some(zk) = &self.zk {
            if let Err(e) = zk.submit(op, request) {
                self.zk = None;
                self.zk_failed(op, e);
            }
        }
    }

    #[cfg(not(feature = "zookeeper"))]
    fn zookeeper(&mut self, op: ZkOpId, _request: grete::client::ZkRequest) {
        let error = ZkError {
            kind: grete::client::ZkErrorKind::Other,
            message: "grete-blocking was built without the `zookeeper` feature".into(),
        };
        self.zk_failed(op, error);
    }

    fn zk_failed(&mut self, op: ZkOpId, error: ZkError) {
        self.core
            .lock()
            .client
            .handle_zk_result(Instant::now(), op, Err(error));
    }

    fn shutdown(&mut self) {
        {
            let mut core = self.core.lock();
            core.client.close(Instant::now());
            // Every producer's waiter wakes and finds the client closed.
            core.close();
        }
        self.drain();
        for (_, slot) in self.conns.drain() {
            if let Slot::Open(link) = slot {
                link.close();
            }
        }
    }
}
