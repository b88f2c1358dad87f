//! The examples' mock-cluster paths run as tests, so they keep working: the quickstart's
//! report and the custom event loop's bootstrap and producing, both without brokers.

#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

#[allow(dead_code)]
#[path = "../examples/custom_event_loop.rs"]
mod custom_event_loop;

#[test]
fn quickstart_on_the_mock_cluster() {
    let report = quickstart::with_mock(None).expect("quickstart");
    assert_eq!(report.cluster.brokers().count(), 3);
    assert_eq!(report.topic, "events");
    assert_eq!(report.partitions.len(), 3);
    let latest: Vec<i64> = report
        .latest
        .iter()
        .map(|o| o.result.clone().expect("offset"))
        .collect();
    assert_eq!(latest, vec![3, 1, 5]);
    // Every record produced is read back once.
    let mut consumed: Vec<(i32, i64)> = report.consumed.iter().map(|c| (c.0, c.1)).collect();
    consumed.sort_unstable();
    let mut produced = report.produced.clone();
    produced.sort_unstable();
    assert_eq!(consumed, produced);
    assert!(report.consumed.iter().all(|c| c.2 == "hello"));
}

#[test]
fn custom_event_loop_on_the_mock_cluster() {
    let outcome = custom_event_loop::bootstrap_mock().expect("custom event loop");
    assert_eq!(outcome.cluster.brokers().count(), 3);
    assert!(outcome.cluster.topic("events").is_some());
    assert_eq!((outcome.delivered, outcome.failed), (1000, 0));
}
