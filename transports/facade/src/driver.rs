//! The driver, written once: what wakes it ([`Shared::poll_input`]), how an input reaches
//! the core ([`Shared::handle`], [`Shared::transmit`]), the drain in the documented order
//! with the timers ([`Driver::settle`]), the IO instructions carried out, and closing
//! ([`Owner`], [`Driver::shut_down`]). A transport supplies only its [`Transport`]: how to
//! open a connection (a task, or threads) and the [`Link`] to wake or close it, and the
//! wait itself (awaiting `poll_input` with a timer, or parking on it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use grete::client::{Client, ConnectionHandle, Io};

use crate::zk::ZooKeeper;
use crate::Shared;

/// What wakes the driver, set from any thread without the core's lock (and without
/// allocating: a producer's hot path wakes it).
#[derive(Default)]
pub(crate) struct Signals {
    /// A handle changed something (a batch opened or filled, a flush, an operation
    /// started): drive the client, then drain it.
    pub(crate) drive: AtomicBool,
    /// An input drove the client already (bytes read, a connection's outcome, a
    /// ZooKeeper result): only drain it.
    pub(crate) drain: AtomicBool,
    pub(crate) close: AtomicBool,
    driver: Mutex<Option<Waker>>,
    /// Whether the driver stopped, and who waits for it.
    stopped: Mutex<(bool, Vec<Waker>)>,
}

impl Signals {
    pub(crate) fn raise(&self, flag: fn(&Signals) -> &AtomicBool) {
        flag(self).store(true, Ordering::Release);
        if let Some(w) = &*self.driver.lock().unwrap_or_else(PoisonError::into_inner) {
            w.wake_by_ref();
        }
    }
}

/// What the driver is woken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Something to drain (a drive a handle asked for is done already).
    Work,
    /// The client is to close: [`Driver::shut_down`].
    Close,
}

impl Shared {
    /// Feeds the core one input (`input` calls a `handle_*` method of the client) and
    /// wakes the driver to drain it.
    pub fn handle<T>(&self, input: impl FnOnce(&mut Client, Instant) -> T) -> T {
        let out = input(&mut self.lock().client, Instant::now());
        self.signals.raise(|s| &s.drain);
        out
    }

    /// What an idle writer asks for: the core's bytes for `conn`, appended to `buf` (that
    /// is where producers' batches are sealed); `false` when there are none. Never write
    /// while holding the lock: this releases it.
    pub fn transmit(&self, conn: ConnectionHandle, buf: &mut Vec<u8>) -> bool {
        let got = (self.lock().client).poll_transmit_to(Instant::now(), conn, buf);
        if got {
            // Sealing may have settled batches at once (acks=0): their reports are due.
            self.signals.raise(|s| &s.drain);
        }
        got
    }

    /// The driver's wait: `Pending` until something wakes it.
    pub fn poll_input(&self, cx: &mut Context<'_>) -> Poll<Input> {
        let s = &self.signals;
        match &mut *s.driver.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(w) => w.clone_from(cx.waker()),
            slot => *slot = Some(cx.waker().clone()),
        }
        if s.close.load(Ordering::Acquire) {
            return Poll::Ready(Input::Close);
        }
        if s.drive.swap(false, Ordering::AcqRel) {
            self.lock().client.handle_timeout(Instant::now());
            return Poll::Ready(Input::Work);
        }
        if s.drain.swap(false, Ordering::AcqRel) {
            return Poll::Ready(Input::Work);
        }
        Poll::Pending
    }

    /// Asks the driver to close the client; [`poll_stopped`](Self::poll_stopped) says
    /// when it did.
    pub fn request_close(&self) {
        self.signals.raise(|s| &s.close);
    }

    /// `Ready` once the driver has closed the client and its connections.
    pub fn poll_stopped(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut stopped = (self.signals.stopped.lock()).unwrap_or_else(PoisonError::into_inner);
        if stopped.0 {
            return Poll::Ready(());
        }
        if !stopped.1.iter().any(|w| w.will_wake(cx.waker())) {
            stopped.1.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// A client handle's hold on its driver: when the last one is dropped (every clone of the
/// client, its topics and producers), the driver closes the client.
pub struct Owner(Arc<Shared>);

impl Owner {
    /// A hold on `shared`'s driver.
    pub fn new(shared: &Arc<Shared>) -> Arc<Owner> {
        Arc::new(Owner(shared.clone()))
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.request_close();
    }
}

/// One connection as the driver holds it: the transport's task or threads behind it.
pub trait Link: Send + Sync + 'static {
    /// The core may have bytes for this connection: an idle writer asks for them.
    fn wake_writer(&self);
    /// The core closed the connection: end its task or threads, also mid-write.
    fn close(&self);
}

/// What a transport does for the driver.
pub trait Transport {
    /// Its connections.
    type Link: Link;
    /// Starts connecting `conn` to `host:port`: a task or threads that report to the core
    /// themselves. No timer of its own: the core abandons a connection not established by
    /// its deadline and the driver closes its link.
    fn connect(&mut self, conn: ConnectionHandle, host: String, port: u16) -> Arc<Self::Link>;
}

/// The driver's state: the core, the transport, the connections and ZooKeeper.
pub struct Driver<T: Transport> {
    shared: Arc<Shared>,
    transport: T,
    links: HashMap<ConnectionHandle, Arc<T::Link>>,
    zk: ZooKeeper,
    stopped: bool,
}

impl<T: Transport> Driver<T> {
    /// A driver of `shared` over `transport`.
    pub fn new(shared: Arc<Shared>, transport: T, zk: ZooKeeper) -> Driver<T> {
        Driver {
            shared,
            transport,
            links: HashMap::new(),
            zk,
            stopped: false,
        }
    }

    /// The core it drives.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Drains the client in the documented order (IO, transmits, events) under the lock,
    /// runs the delivery callbacks and carries out the IO without it, and runs the timers
    /// that are due, until nothing is left to do now. Returns when the client's next timer
    /// is due (the driver sleeps until then or its next input). Bounded: after 64 rounds
    /// it returns "now", so the driver looks at its inputs before going on.
    pub fn settle(&mut self) -> Option<Instant> {
        for _ in 0..64 {
            let mut io = Vec::new();
            let next = {
                let mut core = self.shared.lock();
                while let Some(i) = core.client.poll_io() {
                    io.push(i);
                }
                // Wake the writers the core may have bytes for; drop the links of
                // connections it forgot (they ended).
                let client = &core.client;
                self.links.retain(|h, link| {
                    let known = client.connection_state(*h).is_some();
                    if !known {
                        link.close();
                    } else if client.wants_transmit(*h) {
                        link.wake_writer();
                    }
                    known
                });
                // Results and reports go to their waiters, who need the lock to read them:
                // after the snapshot is published, so a caller sees what its operation
                // did. What is left (broker failures) the application learns from errors.
                while core.poll_event().is_some() {}
                // Level-triggered: every waiting consumer with a batch is woken.
                core.wake_consumers();
                self.shared.publish_cluster(&mut core);
                let now = Instant::now();
                match core.client.poll_timeout() {
                    _ if !io.is_empty() => None,
                    // The core's contract: after handle_timeout(now) nothing is due at
                    // `now`, so this cannot spin.
                    Some(at) if at <= now => {
                        core.client.handle_timeout(now);
                        None
                    }
                    next => Some(next),
                }
            };
            self.shared.run_callbacks();
            if let Some(next) = next {
                return next;
            }
            for i in io {
                self.carry_out(i);
            }
        }
        Some(Instant::now())
    }

    fn carry_out(&mut self, io: Io) {
        match io {
            Io::Connect { conn, host, port } => {
                let link = self.transport.connect(conn, host, port);
                self.links.insert(conn, link);
            }
            Io::Close { conn } => {
                if let Some(link) = self.links.remove(&conn) {
                    link.close();
                }
            }
            Io::ZooKeeper { op, request } => self.zk.read(&self.shared, op, request),
            other => debug_assert!(false, "unknown instruction {other:?}"),
        }
    }

    /// Closes the client (unfinished operations fail, every waiter wakes and finds its
    /// outcome or the client closed), drains it a last time, closes the connections and
    /// the ZooKeeper session, and wakes who waits in [`Shared::poll_stopped`].
    pub fn shut_down(mut self) {
        self.close_core();
        self.settle();
        self.zk.close();
        self.stop();
    }

    fn close_core(&self) {
        let mut core = self.shared.lock();
        core.client.close(Instant::now());
        core.close();
    }

    fn stop(&mut self) {
        self.stopped = true;
        for (_, link) in self.links.drain() {
            link.close();
        }
        let waiters = {
            let signals = &self.shared.signals;
            let mut stopped = signals
                .stopped
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            stopped.0 = true;
            std::mem::take(&mut stopped.1)
        };
        for w in waiters {
            w.wake();
        }
    }
}

impl<T: Transport> Drop for Driver<T> {
    /// A driver dropped without shutting down (its runtime went away): its connections
    /// close and whoever waits for it stops waiting. Nothing is spawned (there may be no
    /// runtime left to spawn on): the ZooKeeper session, if any, just ends.
    fn drop(&mut self) {
        if !self.stopped {
            self.close_core();
            self.stop();
        }
    }
}
