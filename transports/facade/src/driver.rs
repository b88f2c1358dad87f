//! What every driver does with the core, written once: feed it an input and wake the
//! driver to drain ([`Shared::handle`], [`Shared::transmit`]), and the drain itself in the
//! documented order with the timers ([`Shared::settle`]). A transport supplies only its
//! [`Links`]: how it wakes its writers and carries out the core's IO instructions.

use std::time::Instant;

use grete::client::{Client, ConnectionHandle, Io};

use crate::Shared;

/// Why the driver is woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A handle changed something (a batch opened or filled, a flush, an operation
    /// started): drive the client (`handle_timeout`), then drain it.
    Drive,
    /// An input drove the client already (bytes read, a connection's outcome, a
    /// ZooKeeper result): only drain it.
    Drain,
}

/// A driver's connections, as [`Shared::settle`] uses them.
pub trait Links {
    /// Under the core's lock, after each drain: wake the writers the core may have bytes
    /// for ([`Client::wants_transmit`]), and drop the links of connections it forgot.
    fn poke(&mut self, client: &Client);
    /// Carries out one IO instruction, outside the lock.
    fn carry_out(&mut self, io: Io);
}

impl Shared {
    /// Feeds the core one input (`input` calls a `handle_*` method of the client) and
    /// wakes the driver to drain it.
    pub fn handle<T>(&self, input: impl FnOnce(&mut Client, Instant) -> T) -> T {
        let out = input(&mut self.lock().client, Instant::now());
        (self.wake)(Wake::Drain);
        out
    }

    /// What an idle writer asks for: the core's bytes for `conn`, appended to `buf` (that
    /// is where producers' batches are sealed); `false` when there are none. Never write
    /// while holding the lock: this releases it.
    pub fn transmit(&self, conn: ConnectionHandle, buf: &mut Vec<u8>) -> bool {
        let got = (self.lock().client).poll_transmit_to(Instant::now(), conn, buf);
        if got {
            // Sealing may have settled batches at once (acks=0): their reports are due.
            (self.wake)(Wake::Drain);
        }
        got
    }

    /// Drives the client (a handle asked for it with [`Wake::Drive`]).
    pub fn drive(&self) {
        self.lock().client.handle_timeout(Instant::now());
    }

    /// Drains the client in the documented order (IO, transmits, events) under the lock,
    /// runs the delivery callbacks and carries out the IO without it, and runs the timers
    /// that are due, until nothing is left to do now. Returns when the client's next timer
    /// is due (the driver sleeps until then or its next input). Bounded: after 64 rounds
    /// it returns "now", so the driver looks at its inputs before going on.
    pub fn settle(&self, links: &mut impl Links) -> Option<Instant> {
        for _ in 0..64 {
            let mut io = Vec::new();
            let next = {
                let mut core = self.lock();
                while let Some(i) = core.client.poll_io() {
                    io.push(i);
                }
                links.poke(&core.client);
                // Results and reports go to their waiters, who need the lock to read them:
                // after the snapshot is published, so a caller sees what its operation
                // did. What is left (broker failures) the application learns from errors.
                while core.poll_event().is_some() {}
                self.publish_cluster(&mut core);
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
            self.run_callbacks();
            if let Some(next) = next {
                return next;
            }
            for i in io {
                links.carry_out(i);
            }
        }
        Some(Instant::now())
    }

    /// Closes the client: unfinished operations fail, every waiter wakes and finds its
    /// outcome or the client closed; then the last drain. The driver closes its links.
    pub fn shut_down(&self, links: &mut impl Links) {
        {
            let mut core = self.lock();
            core.client.close(Instant::now());
            core.close();
        }
        self.settle(links);
    }
}
