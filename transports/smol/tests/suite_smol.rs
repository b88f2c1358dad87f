//! The shared transport suite (`transports/testsupport/suite.rs`) on smol.

use std::future::Future;
use std::time::Duration;

use smol::future::FutureExt;

use grete_smol as transport;

/// The most any one test may take.
const TEST_LIMIT: Duration = Duration::from_secs(90);

fn block_on(test: impl Future<Output = ()>) {
    smol::block_on(
        async {
            test.await;
            true
        }
        .or(async {
            smol::Timer::after(TEST_LIMIT).await;
            false
        }),
    )
    .then_some(())
    .expect("the test took too long");
}

/// smol's executor does not count its tasks (the suite counts sockets instead).
fn alive_tasks() -> Option<usize> {
    None
}

#[path = "../../testsupport/suite.rs"]
mod suite;
