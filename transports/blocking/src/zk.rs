//! ZooKeeper reads for `Bootstrap::ZooKeeper`: zookeeper-async on a private current-thread
//! tokio runtime in one dedicated thread, started on the first read. The session is kept
//! between reads and opened again after an error. The core sets the policy: it abandons a
//! read at its own deadline (`ClientConfig::zookeeper_request_timeout`) and ignores a late
//! answer; the same bound here only frees the thread for the next read. The session
//! timeout is `ClientConfig::zookeeper_session_timeout`, as in every transport.

use std::sync::mpsc::SyncSender;
use std::thread;
use std::time::Duration;

use grete::client::{ZkError, ZkErrorKind, ZkOpId, ZkRequest, ZkResponse};

use crate::driver::Msg;

/// The driver's end: queue reads without blocking.
#[derive(Debug)]
pub struct ZkHandle {
    tx: tokio::sync::mpsc::UnboundedSender<(ZkOpId, ZkRequest)>,
}

fn zk_error(kind: ZkErrorKind, message: impl Into<String>) -> ZkError {
    ZkError {
        kind,
        message: message.into(),
    }
}

impl ZkHandle {
    /// Starts the ZooKeeper thread for `hosts` (`h:p,h:p`, no chroot: the core puts the
    /// chroot in every path), with the core's session and read timeouts.
    pub fn start(
        hosts: String,
        session_timeout: Duration,
        read_timeout: Duration,
        driver: SyncSender<Msg>,
    ) -> std::io::Result<ZkHandle> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(ZkOpId, ZkRequest)>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .enable_io()
            .build()?;
        thread::Builder::new()
            .name("grete-zookeeper".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut session: Option<zookeeper_async::ZooKeeper> = None;
                    while let Some((op, request)) = rx.recv().await {
                        let result = tokio::time::timeout(
                            read_timeout,
                            run(&mut session, &hosts, session_timeout, request),
                        )
                        .await
                        .unwrap_or_else(|_| {
                            Err(zk_error(
                                ZkErrorKind::ConnectionLoss,
                                format!("ZooKeeper {hosts} did not answer in time"),
                            ))
                        });
                        if result.is_err() {
                            // Start afresh next time (a lost session, a bad host...).
                            if let Some(zk) = session.take() {
                                let _ =
                                    tokio::time::timeout(Duration::from_secs(1), zk.close()).await;
                            }
                        }
                        if driver.send(Msg::Zk(op, result)).is_err() {
                            break;
                        }
                    }
                    if let Some(zk) = session.take() {
                        let _ = tokio::time::timeout(Duration::from_secs(1), zk.close()).await;
                    }
                });
            })?;
        Ok(ZkHandle { tx })
    }

    /// Queues a read; its result arrives at the driver as [`Msg::Zk`].
    pub fn submit(&self, op: ZkOpId, request: ZkRequest) -> Result<(), ZkError> {
        self.tx
            .send((op, request))
            .map_err(|_| zk_error(ZkErrorKind::ConnectionLoss, "the ZooKeeper thread is gone"))
    }
}

async fn run(
    session: &mut Option<zookeeper_async::ZooKeeper>,
    hosts: &str,
    session_timeout: Duration,
    request: ZkRequest,
) -> Result<ZkResponse, ZkError> {
    if session.is_none() {
        let zk = zookeeper_async::ZooKeeper::connect(hosts, session_timeout, |_| {})
            .await
            .map_err(|e| map_error(e, hosts))?;
        *session = Some(zk);
    }
    let Some(zk) = session.as_ref() else {
        return Err(zk_error(
            ZkErrorKind::ConnectionLoss,
            "no ZooKeeper session",
        ));
    };
    match request {
        ZkRequest::GetChildren { path } => zk
            .get_children(&path, false)
            .await
            .map(ZkResponse::Children)
            .map_err(|e| map_error(e, &path)),
        ZkRequest::GetData { path } => zk
            .get_data(&path, false)
            .await
            .map(|(data, _)| ZkResponse::Data(data))
            .map_err(|e| map_error(e, &path)),
        other => Err(zk_error(
            ZkErrorKind::Other,
            format!("unsupported ZooKeeper request {other:?}"),
        )),
    }
}

fn map_error(e: zookeeper_async::ZkError, what: &str) -> ZkError {
    use zookeeper_async::ZkError as E;
    let kind = match e {
        E::NoNode => ZkErrorKind::NoNode,
        E::ConnectionLoss | E::SessionExpired | E::OperationTimeout => ZkErrorKind::ConnectionLoss,
        _ => ZkErrorKind::Other,
    };
    zk_error(kind, format!("ZooKeeper {what}: {e:?}"))
}
