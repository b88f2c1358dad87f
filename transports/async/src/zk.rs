//! ZooKeeper reads with zookeeper-async, which runs on tokio: its futures go through
//! [`Runtime::spawn_zookeeper`]. One session per client, opened on first use and dropped
//! after a failure. The core sets the policy: it abandons a read at its own deadline
//! (`ClientConfig::zookeeper_request_timeout`) and ignores a late answer; the same bound
//! here only frees the task. The session timeout is `ClientConfig::zookeeper_session_timeout`,
//! as in every transport.

use std::sync::Arc;
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::SinkExt;
use grete::client::{ZkError, ZkErrorKind, ZkOpId, ZkRequest, ZkResponse};
use zookeeper_async::{WatchedEvent, ZooKeeper};

use crate::driver::IoMsg;
use crate::Runtime;

/// How long closing a session may take at shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    hosts: String,
    session_timeout: Duration,
    op_timeout: Duration,
    zk: tokio::sync::Mutex<Option<Arc<ZooKeeper>>>,
}

impl Session {
    /// A session for `hosts` with the core's timeouts.
    pub(crate) fn new(hosts: &str, session_timeout: Duration, op_timeout: Duration) -> Session {
        Session {
            inner: Arc::new(Inner {
                hosts: hosts.to_owned(),
                session_timeout,
                op_timeout,
                zk: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Runs `request` in the background and reports its result to the driver (or fails
    /// at once when the runtime cannot run it).
    pub(crate) fn spawn(
        &self,
        rt: &dyn Runtime,
        op: ZkOpId,
        request: ZkRequest,
        mut events: mpsc::Sender<IoMsg>,
    ) -> Result<(), ZkError> {
        let inner = self.inner.clone();
        rt.spawn_zookeeper(Box::pin(async move {
            let result = match tokio::time::timeout(inner.op_timeout, inner.run(request)).await {
                Ok(result) => result,
                Err(_) => {
                    inner.reset().await;
                    Err(ZkError {
                        kind: ZkErrorKind::ConnectionLoss,
                        message: format!(
                            "no answer from ZooKeeper {} within {:?}",
                            inner.hosts, inner.op_timeout
                        ),
                    })
                }
            };
            let _ = events.send(IoMsg::Zk { op, result }).await;
        }))
        .map_err(|message| ZkError {
            kind: ZkErrorKind::Other,
            message,
        })
    }

    /// Closes the session, if one is open.
    pub(crate) fn close(&self, rt: &dyn Runtime) {
        let inner = self.inner.clone();
        let _ = rt.spawn_zookeeper(Box::pin(async move { inner.reset().await }));
    }
}

impl Inner {
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
    async fn reset(&self) {
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
        message: format!("{what}: {e:?}"),
    }
}
