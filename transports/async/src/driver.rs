//! The driver task: [`grete_facade::Driver`] over connection tasks, sleeping until the
//! core's next timer or a wake-up.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use grete::client::{Client, ConnectionHandle};
use grete::config::ClientConfig;
use grete::error::Error;
use grete_facade::zk::ZooKeeper;
use grete_facade::{Driver, Input, Shared, Transport};

use crate::conn::{self, ConnectSpec, Link};
use crate::tls::Tls;
use crate::Runtime;

/// Connections as tasks on the runtime.
struct Tasks {
    rt: Arc<dyn Runtime>,
    shared: Arc<Shared>,
    write_timeout: Duration,
    tls: Option<Arc<Tls>>,
}

impl Transport for Tasks {
    type Link = Link;

    fn connect(&mut self, conn: ConnectionHandle, host: String, port: u16) -> Arc<Link> {
        let link = Arc::new(Link::default());
        let spec = ConnectSpec {
            conn,
            host,
            port,
            write_timeout: self.write_timeout,
            tls: self.tls.clone(),
        };
        let task = conn::run(self.rt.clone(), spec, link.clone(), self.shared.clone());
        self.rt.spawn(Box::pin(task));
        link
    }
}

/// Validates `config` and spawns the driver.
pub(crate) fn start(rt: Arc<dyn Runtime>, config: ClientConfig) -> Result<Arc<Shared>, Error> {
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
    let shared = Shared::new(client, || {});
    let tasks = Tasks {
        rt: rt.clone(),
        shared: shared.clone(),
        write_timeout,
        tls,
    };
    rt.spawn(Box::pin(run(
        Driver::new(shared.clone(), tasks, zk),
        rt.clone(),
    )));
    Ok(shared)
}

async fn run(mut driver: Driver<Tasks>, rt: Arc<dyn Runtime>) {
    loop {
        let mut sleep = driver.settle().map(|at| rt.sleep_until(at));
        let input = poll_fn(|cx| match driver.shared().poll_input(cx) {
            // `settle` runs the timers that are due.
            Poll::Pending => match sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Input::Work),
                _ => Poll::Pending,
            },
            ready => ready,
        })
        .await;
        if input == Input::Close {
            break;
        }
    }
    driver.shut_down();
}
