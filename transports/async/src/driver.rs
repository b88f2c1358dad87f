//! The driver task: owns the core client, feeds it the clock, the connections' bytes and
//! the application's commands, and drains it in the documented order (IO, transmits,
//! events, then the timer).

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_channel::{mpsc, oneshot};
use futures_util::task::AtomicWaker;
use futures_util::StreamExt;
use grete::client::{
    Client, ConnectionHandle, Io, ZkError, ZkErrorKind, ZkOpId, ZkRequest, ZkResponse,
};
use grete::cluster::Cluster;
use grete::config::ClientConfig;
use grete::error::Error;

use crate::conn::{self, ConnectSpec};
use crate::tls::Tls;
use crate::Runtime;

/// How many messages from the connections may wait for the driver (back-pressure on
/// the readers beyond that).
const IO_QUEUE: usize = 64;

/// What a ZooKeeper task reports (connection tasks talk to the core directly).
pub(crate) enum IoMsg {
    #[cfg_attr(not(feature = "zookeeper"), allow(dead_code))]
    Zk {
        op: ZkOpId,
        result: Result<ZkResponse, ZkError>,
    },
}

/// A command from a [`KafkaClient`](crate::KafkaClient) handle.
///
/// Operations go through the shared core (a waker each); the channel carries only this,
/// and its closing when every handle is gone stops the driver.
pub(crate) enum Command {
    Close { done: oneshot::Sender<()> },
}

/// The core the handles share with the driver.
pub(crate) struct Shared {
    pub(crate) core: Arc<grete_facade::Shared>,
}

/// Wakes the driver task from any thread: to drive the client (a handle appended a
/// record that opened or filled a batch, flushed, started an operation) or only to drain
/// it (a connection task handed it bytes, which drove it already).
#[derive(Default)]
pub(crate) struct Notify {
    drive: AtomicBool,
    drain: AtomicBool,
    waker: AtomicWaker,
}

impl Notify {
    fn wake(&self) {
        self.drive.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Only a drain is needed.
    pub(crate) fn wake_to_drain(&self) {
        self.drain.store(true, Ordering::Release);
        self.waker.wake();
    }
}

impl Shared {
    pub(crate) fn cluster(&self) -> Cluster {
        self.with_cluster(Cluster::clone)
    }

    pub(crate) fn with_cluster<T>(&self, f: impl FnOnce(&Cluster) -> T) -> T {
        f(&self.cluster_snapshot())
    }

    pub(crate) fn cluster_snapshot(&self) -> Arc<Cluster> {
        self.core.cluster_snapshot()
    }
}

enum Input {
    Command(Option<Command>),
    Io(IoMsg),
    Timer,
    Wake,
    Drain,
}

pub(crate) struct Driver {
    rt: Arc<dyn Runtime>,
    core: Arc<grete_facade::Shared>,
    notify: Arc<Notify>,
    write_timeout: Duration,
    conns: HashMap<ConnectionHandle, Arc<conn::Link>>,
    commands: mpsc::UnboundedReceiver<Command>,
    io_tx: mpsc::Sender<IoMsg>,
    io_rx: mpsc::Receiver<IoMsg>,
    tls: Option<Arc<Tls>>,
    #[cfg(feature = "zookeeper")]
    zk: Option<crate::zk::Session>,
    io: Vec<Io>,
}

/// Validates `config`, spawns the driver and returns the command sender and the shared
/// state.
pub(crate) fn start(
    rt: Arc<dyn Runtime>,
    config: ClientConfig,
) -> Result<(mpsc::UnboundedSender<Command>, Arc<Shared>), Error> {
    rt.check()?;
    let tls = match &config.tls {
        Some(t) => Some(Arc::new(Tls::new(t)?)),
        None => None,
    };
    #[cfg(feature = "zookeeper")]
    let zk = config.bootstrap.zookeeper_hosts().map(|hosts| {
        crate::zk::Session::new(
            hosts,
            config.zookeeper_session_timeout(),
            config.zookeeper_request_timeout(),
        )
    });
    let client = Client::new(config)?;
    let write_timeout = client.config().write_timeout();
    let notify = Arc::new(Notify::default());
    let wake = notify.clone();
    let core = grete_facade::Shared::new(client, move || wake.wake());
    let shared = Arc::new(Shared { core: core.clone() });
    let (cmd_tx, commands) = mpsc::unbounded();
    let (io_tx, io_rx) = mpsc::channel(IO_QUEUE);
    let driver = Driver {
        rt: rt.clone(),
        core,
        notify,
        write_timeout,
        conns: HashMap::new(),
        commands,
        io_tx,
        io_rx,
        tls,
        #[cfg(feature = "zookeeper")]
        zk,
        io: Vec::new(),
    };
    rt.spawn(Box::pin(driver.run()));
    Ok((cmd_tx, shared))
}

impl Driver {
    async fn run(mut self) {
        let mut close_reply = None;
        loop {
            let now = Instant::now();
            self.drain(now);
            let wake = self.core.lock().client.poll_timeout();
            // The core's contract: after handle_timeout(now) nothing is due at `now`, so
            // this cannot spin.
            if wake.is_some_and(|at| at <= now) {
                self.core.lock().client.handle_timeout(now);
                continue;
            }
            let mut sleep = wake.map(|at| self.rt.sleep_until(at));
            let commands = &mut self.commands;
            let io_rx = &mut self.io_rx;
            let notify = &self.notify;
            let input = poll_fn(|cx| {
                notify.waker.register(cx.waker());
                if notify.drive.swap(false, Ordering::AcqRel) {
                    return Poll::Ready(Input::Wake);
                }
                if notify.drain.swap(false, Ordering::AcqRel) {
                    return Poll::Ready(Input::Drain);
                }
                if let Poll::Ready(c) = commands.poll_next_unpin(cx) {
                    return Poll::Ready(Input::Command(c));
                }
                if let Poll::Ready(Some(m)) = io_rx.poll_next_unpin(cx) {
                    return Poll::Ready(Input::Io(m));
                }
                if let Some(s) = sleep.as_mut() {
                    if s.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Input::Timer);
                    }
                }
                Poll::Pending
            })
            .await;
            let now = Instant::now();
            match input {
                Input::Command(Some(Command::Close { done })) => {
                    close_reply = Some(done);
                    break;
                }
                // Every handle is gone.
                Input::Command(None) => break,
                Input::Io(msg) => self.handle_io(now, msg),
                Input::Timer | Input::Wake => self.core.lock().client.handle_timeout(now),
                // The loop drains first thing.
                Input::Drain => {}
            }
        }
        let now = Instant::now();
        {
            let mut core = self.core.lock();
            core.client.close(now);
            core.close();
        }
        self.drain(now);
        for (_, link) in self.conns.drain() {
            link.close();
        }
        #[cfg(feature = "zookeeper")]
        if let Some(zk) = &self.zk {
            zk.close(&*self.rt);
        }
        if let Some(done) = close_reply {
            let _ = done.send(());
        }
    }

    fn handle_io(&mut self, now: Instant, msg: IoMsg) {
        let IoMsg::Zk { op, result } = msg;
        self.core.lock().client.handle_zk_result(now, op, result);
    }

    /// The documented drain order: IO, transmits, events (until the IO it carried out
    /// gives nothing more to do).
    fn drain(&mut self, now: Instant) {
        loop {
            let mut io = std::mem::take(&mut self.io);
            {
                let mut core = self.core.lock();
                while let Some(i) = core.client.poll_io() {
                    io.push(i);
                }
                // The connections' writers pull their bytes when idle (that is where
                // producers' batches are sealed): tell them the core may have some. A
                // connection the core has forgotten ended: drop its link.
                self.conns.retain(|h, link| {
                    let known = core.client.connection_state(*h).is_some();
                    if !known {
                        link.close();
                    } else if core.client.wants_transmit(*h) {
                        link.wake_writer();
                    }
                    known
                });
                // Operation results and deliveries go to their waiters; what is left
                // (broker failures) the application learns from its errors.
                while core.poll_event().is_some() {}
                self.core.publish_cluster(&mut core);
            }
            self.core.run_callbacks();
            let again = !io.is_empty();
            for i in io.drain(..) {
                match i {
                    Io::Connect { conn, host, port } => self.open(conn, host, port),
                    Io::Close { conn } => {
                        if let Some(link) = self.conns.remove(&conn) {
                            link.close();
                        }
                    }
                    Io::ZooKeeper { op, request } => self.zookeeper(now, op, request),
                    _ => {}
                }
            }
            self.io = io;
            if !again {
                return;
            }
        }
    }

    fn open(&mut self, conn: ConnectionHandle, host: String, port: u16) {
        let link = Arc::new(conn::Link::default());
        self.conns.insert(conn, link.clone());
        // No timer of our own: the core closes the connection (drops `tx`, which ends
        // the task) if it is not established by its connect deadline.
        let spec = ConnectSpec {
            conn,
            host,
            port,
            write_timeout: self.write_timeout,
            tls: self.tls.clone(),
        };
        let core: Arc<dyn conn::Core> = Arc::new(conn::SharedCore {
            core: self.core.clone(),
            notify: self.notify.clone(),
        });
        let task = conn::run(self.rt.clone(), spec, link, core);
        self.rt.spawn(Box::pin(task));
    }

    fn zookeeper(&mut self, now: Instant, op: ZkOpId, request: ZkRequest) {
        #[cfg(feature = "zookeeper")]
        if let Some(zk) = &self.zk {
            if let Err(error) = zk.spawn(&*self.rt, op, request, self.io_tx.clone()) {
                self.core
                    .lock()
                    .client
                    .handle_zk_result(now, op, Err(error));
            }
            return;
        }
        let _ = request;
        let message = if cfg!(feature = "zookeeper") {
            "the client was not configured with a ZooKeeper connect string"
        } else {
            "this transport was built without its `zookeeper` feature"
        };
        let error = ZkError {
            kind: ZkErrorKind::Other,
            message: message.into(),
        };
        self.core
            .lock()
            .client
            .handle_zk_result(now, op, Err(error));
    }
}
