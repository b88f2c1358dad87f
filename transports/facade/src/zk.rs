//! ZooKeeper reads for `Bootstrap::ZooKeeper`, for every transport: zookeeper-async,
//! which runs on tokio, so each read is a task the transport spawns in a tokio context
//! ([`spawn_private`] is a small private runtime for those without one). One session per
//! client, opened on first use and dropped after a lost connection. The core sets the
//! policy: it abandons a read at its own deadline (`ClientConfig::zookeeper_request_timeout`)
//! and ignores a late answer; the same bound here only frees the task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use grete::client::{ZkError, ZkErrorKind, ZkOpId, ZkRequest};
use grete::config::ClientConfig;

use crate::Shared;

/// A task for a tokio context.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs a [`Task`] in the background, or says why it cannot.
pub type Spawner = Box<dyn Fn(Task) -> Result<(), String> + Send + Sync>;

/// A client's ZooKeeper reads, as the driver carries out `Io::ZooKeeper`.
pub struct ZooKeeper {
    /// `None` when the transport was built without its `zookeeper` feature.
    spawn: Option<Spawner>,
    #[cfg(feature = "zookeeper")]
    session: Option<Arc<session::Session>>,
}

impl ZooKeeper {
    /// The reads of a client configured with `config`; `spawn` is `None` when the
    /// transport was built without its `zookeeper` feature.
    pub fn new(config: &ClientConfig, spawn: Option<Spawner>) -> ZooKeeper {
        let _ = config;
        ZooKeeper {
            #[cfg(feature = "zookeeper")]
            session: config.bootstrap.zookeeper_hosts().map(|hosts| {
                Arc::new(session::Session::new(
                    hosts,
                    config.zookeeper_session_timeout(),
                    config.zookeeper_request_timeout(),
                ))
            }),
            spawn,
        }
    }

    /// Runs `request` in the background; its result (or why it could not run) goes to
    /// the core, and the driver is woken to drain it.
    pub fn read(&self, shared: &Arc<Shared>, op: ZkOpId, request: ZkRequest) {
        #[cfg(feature = "zookeeper")]
        if let (Some(spawn), Some(session)) = (&self.spawn, &self.session) {
            let (session, to) = (session.clone(), shared.clone());
            let task = Box::pin(async move {
                let result = session.read(request).await;
                to.handle(|c, now| c.handle_zk_result(now, op, result));
            });
            let Err(e) = spawn(task) else { return };
            return zk_failed(shared, op, format!("cannot run the ZooKeeper read: {e}"));
        }
        let _ = request;
        let message = if self.spawn.is_none() || cfg!(not(feature = "zookeeper")) {
            "this transport was built without its `zookeeper` feature"
        } else {
            "the client was not configured with a ZooKeeper connect string"
        };
        zk_failed(shared, op, message.into());
    }

    /// Closes the session, if one is open.
    pub fn close(&self) {
        #[cfg(feature = "zookeeper")]
        if let (Some(spawn), Some(session)) = (&self.spawn, &self.session) {
            let session = session.clone();
            let _ = spawn(Box::pin(async move { session.reset().await }));
        }
    }
}

fn zk_failed(shared: &Shared, op: ZkOpId, message: String) {
    let error = ZkError {
        kind: ZkErrorKind::Other,
        message,
    };
    shared.handle(|c, now| c.handle_zk_result(now, op, Err(error)));
}

/// Runs `task` on a small private tokio runtime (one worker thread, started on first use),
/// for transports that have no tokio context of their own.
#[cfg(feature = "zookeeper")]
pub fn spawn_private(task: Task) -> Result<(), String> {
    use std::sync::OnceLock;
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("grete-zookeeper")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the private tokio runtime for ZooKeeper: {e}"))
    });
    runtime.as_ref().map_err(Clone::clone)?.spawn(task);
    Ok(())
}

#[cfg(feature = "zookeeper")]
mod session {
    use std::sync::Arc;
    use std::time::Duration;

    use grete::client::{ZkError, ZkErrorKind, ZkRequest, ZkResponse};
    use zookeeper_async::{WatchedEvent, ZooKeeper};

    /// How long closing a session may take.
    const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

    pub(super) struct Session {
        hosts: String,
        session_timeout: Duration,
        op_timeout: Duration,
        zk: tokio::sync::Mutex<Option<Arc<ZooKeeper>>>,
    }

    impl Session {
        pub(super) fn new(hosts: &str, session_timeout: Duration, op_timeout: Duration) -> Self {
            Session {
                hosts: hosts.to_owned(),
                session_timeout,
                op_timeout,
                zk: tokio::sync::Mutex::new(None),
            }
        }

        /// One read, bounded by the core's read timeout.
        pub(super) async fn read(&self, request: ZkRequest) -> Result<ZkResponse, ZkError> {
            match tokio::time::timeout(self.op_timeout, self.run(request)).await {
                Ok(result) => result,
                Err(_) => {
                    self.reset().await;
                    Err(ZkError {
                        kind: ZkErrorKind::ConnectionLoss,
                        message: format!(
                            "no answer from ZooKeeper {} within {:?}",
                            self.hosts, self.op_timeout
                        ),
                    })
                }
            }
        }

        async fn session(&self) -> Result<Arc<ZooKeeper>, ZkError> {
            let mut slot = self.zk.lock().await;
            if let Some(zk) = &*slot {
                return Ok(zk.clone());
            }
            let zk = ZooKeeper::connect(&self.hosts, self.session_timeout, |_: WatchedEvent| {})
                .await
                .map_err(|e| convert(e, &format!("connecting to {}", self.hosts)))?;
            let zk = Arc::new(zk);
            *slot = Some(zk.clone());
            Ok(zk)
        }

        async fn run(&self, request: ZkRequest) -> Result<ZkResponse, ZkError> {
            let zk = self.session().await?;
            let (result, path) = match request {
                ZkRequest::GetChildren { path } => (
                    zk.get_children(&path, false)
                        .await
                        .map(ZkResponse::Children),
                    path,
                ),
                ZkRequest::GetData { path } => (
                    zk.get_data(&path, false)
                        .await
                        .map(|(data, _)| ZkResponse::Data(data)),
                    path,
                ),
                other => {
                    return Err(ZkError {
                        kind: ZkErrorKind::Other,
                        message: format!("unsupported ZooKeeper request {other:?}"),
                    })
                }
            };
            let error = match result {
                Ok(response) => return Ok(response),
                Err(e) => convert(e, &path),
            };
            if error.kind == ZkErrorKind::ConnectionLoss {
                self.reset().await;
            }
            Err(error)
        }

        /// Forgets the session and closes it.
        pub(super) async fn reset(&self) {
            let zk = self.zk.lock().await.take();
            if let Some(zk) = zk {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, zk.close()).await;
            }
        }
    }

    fn convert(e: zookeeper_async::ZkError, what: &str) -> ZkError {
        use zookeeper_async::ZkError as Z;
        let kind = match e {
            Z::NoNode => ZkErrorKind::NoNode,
            Z::ConnectionLoss | Z::SessionExpired | Z::OperationTimeout | Z::SessionMoved => {
                ZkErrorKind::ConnectionLoss
            }
            _ => ZkErrorKind::Other,
        };
        ZkError {
            kind,
            message: format!("ZooKeeper {what}: {e:?}"),
        }
    }
}
