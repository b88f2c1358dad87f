//! The driver task: sleeps until the core's next timer or a wake-up, then lets
//! [`Shared::settle`] drain the core; its [`Links`] are the connection tasks.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_channel::{mpsc, oneshot};
use futures_util::task::AtomicWaker;
use futures_util::StreamExt;
use grete::client::{Client, ConnectionHandle, Io};
use grete::config::ClientConfig;
use grete::error::Error;
use grete_facade::zk::ZooKeeper;
use grete_facade::{Links, Shared, Wake};

use crate::conn::{self, ConnectSpec};
use crate::tls::Tls;
use crate::Runtime;

/// Closes the client; the channel closing when every handle is gone stops the driver too.
pub(crate) struct Close(pub(crate) oneshot::Sender<()>);

/// Wakes the driver task from any thread, to drive or only to drain the client.
#[derive(Default)]
struct Notify {
    drive: AtomicBool,
    drain: AtomicBool,
    waker: AtomicWaker,
}

struct Conns {
    rt: Arc<dyn Runtime>,
    shared: Arc<Shared>,
    write_timeout: Duration,
    tls: Option<Arc<Tls>>,
    zk: ZooKeeper,
    links: HashMap<ConnectionHandle, Arc<conn::Link>>,
}

impl Links for Conns {
    fn poke(&mut self, client: &Client) {
        // A connection the core has forgotten ended: drop its link.
        self.links.retain(|h, link| {
            let known = client.connection_state(*h).is_some();
            if !known {
                link.close();
            } else if client.wants_transmit(*h) {
                link.wake_writer();
            }
            known
        });
    }

    fn carry_out(&mut self, io: Io) {
        match io {
            Io::Connect { conn, host, port } => {
                let link = Arc::new(conn::Link::default());
                self.links.insert(conn, link.clone());
                let spec = ConnectSpec {
                    conn,
                    host,
                    port,
                    write_timeout: self.write_timeout,
                    tls: self.tls.clone(),
                };
                let task = conn::run(self.rt.clone(), spec, link, self.shared.clone());
                self.rt.spawn(Box::pin(task));
            }
            Io::Close { conn } => {
                if let Some(link) = self.links.remove(&conn) {
                    link.close();
                }
            }
            Io::ZooKeeper { op, request } => self.zk.read(&self.shared, op, request),
            _ => {}
        }
    }
}

/// Validates `config`, spawns the driver and returns the close channel and the core.
pub(crate) fn start(
    rt: Arc<dyn Runtime>,
    config: ClientConfig,
) -> Result<(mpsc::UnboundedSender<Close>, Arc<Shared>), Error> {
    rt.check()?;
    let tls = match &config.tls {
        Some(t) => Some(Arc::new(Tls::new(t)?)),
        None => None,
    };
    #[cfg(feature = "zookeeper")]
    let spawn: Option<grete_facade::zk::Spawner> = Some(Box::new({
        let rt = rt.clone();
        move |task| rt.spawn_zookeeper(task)
    }));
    #[cfg(not(feature = "zookeeper"))]
    let spawn = None;
    let zk = ZooKeeper::new(&config, spawn);
    let client = Client::new(config)?;
    let write_timeout = client.config().write_timeout();
    let notify = Arc::new(Notify::default());
    let wake = notify.clone();
    let shared = Shared::with_wake(client, move |why| {
        let flag = match why {
            Wake::Drive => &wake.drive,
            Wake::Drain => &wake.drain,
        };
        flag.store(true, Ordering::Release);
        wake.waker.wake();
    });
    let (close_tx, close_rx) = mpsc::unbounded();
    let conns = Conns {
        rt: rt.clone(),
        shared: shared.clone(),
        write_timeout,
        tls,
        zk,
        links: HashMap::new(),
    };
    rt.spawn(Box::pin(run(conns, notify, close_rx)));
    Ok((close_tx, shared))
}

enum Input {
    Drive,
    Drain,
    /// `None`: every handle is gone.
    Close(Option<Close>),
}

async fn run(mut conns: Conns, notify: Arc<Notify>, mut close: mpsc::UnboundedReceiver<Close>) {
    let shared = conns.shared.clone();
    let reply = loop {
        let mut sleep = shared.settle(&mut conns).map(|at| conns.rt.sleep_until(at));
        let input = poll_fn(|cx| {
            notify.waker.register(cx.waker());
            if notify.drive.swap(false, Ordering::AcqRel) {
                return Poll::Ready(Input::Drive);
            }
            if notify.drain.swap(false, Ordering::AcqRel) {
                return Poll::Ready(Input::Drain);
            }
            if let Poll::Ready(c) = close.poll_next_unpin(cx) {
                return Poll::Ready(Input::Close(c));
            }
            match sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
                // `settle` runs the timers that are due.
                Some(Poll::Ready(())) => Poll::Ready(Input::Drain),
                _ => Poll::Pending,
            }
        })
        .await;
        match input {
            Input::Drive => shared.drive(),
            Input::Drain => {}
            Input::Close(reply) => break reply,
        }
    };
    shared.shut_down(&mut conns);
    for (_, link) in conns.links.drain() {
        link.close();
    }
    conns.zk.close();
    if let Some(Close(done)) = reply {
        let _ = done.send(());
    }
}
