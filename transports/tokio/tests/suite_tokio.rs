//! The shared transport suite (`transports/testsupport/suite.rs`) on tokio.

use std::future::Future;
use std::time::Duration;

use grete_tokio as transport;

/// The most any one test may take.
const TEST_LIMIT: Duration = Duration::from_secs(90);

/// Runs a test on a current-thread runtime (what `#[tokio::test]` gives): the driver,
/// the connections and the test share one thread.
fn block_on(test: impl Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        tokio::time::timeout(TEST_LIMIT, test)
            .await
            .expect("the test took too long");
    });
}

/// The tasks alive on the current runtime (the driver, one per connection...).
fn alive_tasks() -> Option<usize> {
    Some(
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
    )
}

#[path = "../../testsupport/suite.rs"]
mod suite;

#[test]
fn works_on_a_multi_thread_runtime_too() {
    let list = match std::env::var("GRETE_KAFKA09_BROKERS") {
        Ok(list) if !list.is_empty() => list,
        _ => {
            assert!(
                std::env::var("GRETE_REQUIRE_BROKERS").as_deref() != Ok("1"),
                "GRETE_KAFKA09_BROKERS is not set but GRETE_REQUIRE_BROKERS=1"
            );
            eprintln!("skipped: GRETE_KAFKA09_BROKERS is not set");
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let config = transport::ClientConfig {
            bootstrap: transport::config::Bootstrap::Brokers(
                transport::config::BrokerAddress::parse(&list).expect("list"),
            ),
            request_timeout: Duration::from_secs(10),
            ..transport::ClientConfig::default()
        };
        let client = tokio::time::timeout(TEST_LIMIT, transport::KafkaClient::connect(config))
            .await
            .expect("in time")
            .expect("connect");
        assert!(!client.brokers().is_empty());
        client.close().await;
    });
}

#[test]
fn connect_outside_a_runtime_is_misuse() {
    let result = futures_lite_block_on(transport::KafkaClient::connect(
        transport::ClientConfig::default(),
    ));
    assert!(
        matches!(result, Err(transport::Error::Misuse(_))),
        "{result:?}"
    );
}

/// A minimal executor for a future that must not need tokio.
fn futures_lite_block_on<F: Future>(f: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Thread(std::thread::Thread);
    impl Wake for Thread {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Thread(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    for _ in 0..1000 {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
    panic!("the future did not finish");
}
